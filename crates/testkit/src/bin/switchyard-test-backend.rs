//! A test backend as its own process, for end-to-end tests that run every
//! piece as a real program. Prints `listening on http://ADDR`, then serves
//! until killed.
//!
//! Usage: switchyard-test-backend NAME [ADDR]

use switchyard_testkit::Backend;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let Some(name) = args.next() else {
        eprintln!("usage: switchyard-test-backend NAME [ADDR]");
        std::process::exit(2);
    };
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
