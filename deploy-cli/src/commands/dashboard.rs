//! `switchyard dashboard`: a live page of the release, served from here.

use clap::Args;

use crate::{Context, Failure, usage};

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Address to serve on; anything but loopback must be asked for here, and still needs the token
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7077")]
    pub listen: String,
}

pub async fn run(ctx: &Context, args: DashboardArgs) -> Result<(), Failure> {
    let addr: std::net::SocketAddr = args.listen.parse().map_err(|_| {
        usage(format!(
            "invalid value {:?} for --listen: an address and port, such as 127.0.0.1:7077",
            args.listen
        ))
    })?;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        usage(format!(
            "cannot serve on {addr}: {e}; pick another with --listen (port 0 takes a free one)"
        ))
    })?;
    let bound = listener.local_addr()?;
    let token = crate::dashboard::new_token();
    let host = if bound.ip().is_unspecified() {
        format!("<this host>:{}", bound.port())
    } else {
        bound.to_string()
    };
    let url = format!("http://{host}/?token={token}");
    if !bound.ip().is_loopback() {
        eprintln!(
            "warning: serving on {bound}, beyond this machine, over plain HTTP: anyone on the path can read \
             the token. An SSH tunnel to a loopback bind keeps it private (ssh -L 7077:127.0.0.1:7077 host)"
        );
    }
    ctx.say(
        || format!("dashboard (read-only): {url}\nCtrl-C stops it.\n"),
        || serde_json::json!({ "url": url }),
    );
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    crate::dashboard::serve(ctx.store.clone(), listener, token, stop).await?;
    Ok(())
}
