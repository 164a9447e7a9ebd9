//! A test backend as its own process, for end-to-end tests that run every
//! piece as a real program. Prints `listening on http://ADDR`, then serves
//! until killed.
//!
//! Usage: switchyard-test-backend NAME [ADDR]

use switchyard_testkit::Backend;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    const USAGE: &str = "usage: switchyard-test-backend NAME [ADDR]\n\n\
        A test backend that answers as deployment NAME on ADDR (default 127.0.0.1:0)\n\
        and prints `listening on http://ADDR`. Routes: /ws (echo), /page (the browser\n\
        client's test page), /sse, /assets/NAME-*, /status/CODE, /slow, /download,\n\
        /upload, the Pulse internal endpoints, and an echo of anything else.";
    let Some(name) = args.next() else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    if name == "--help" || name == "-h" {
        println!("{USAGE}");
        return;
    }
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("switchyard-test-backend: cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    let backend = Backend::serve(&name, listener).await;
    println!("listening on {}", backend.url());
    std::future::pending::<()>().await;
}
