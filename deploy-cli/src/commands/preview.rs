//! `switchyard preview-url ID [--ttl 1h]`: a link that opens a deployment
//! that gets no unpinned traffic (a preview, or any live one). In strict
//! mode (`SWITCHYARD_PIN_SECRET` set, as on the routers) the link carries a
//! signed token that expires; without it, the bare id, which anyone who
//! knows it can use.

use clap::Args;
use switchyard_core::names::DEFAULT_QUERY_PARAM;
use switchyard_core::{
    DeploymentState, UnixTime,
    config::{EnvSource, parse_duration},
};

use super::parse_id;
use crate::{Context, Failure, usage};

#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The deployment the link opens
    pub deployment_id: String,
    /// How long the link works, in strict mode [default: 1h]
    #[arg(long)]
    pub ttl: Option<String>,
}

pub async fn run(ctx: &Context, env: &dyn EnvSource, args: PreviewArgs) -> Result<(), Failure> {
    let id = parse_id(&args.deployment_id)?;
    let ttl = match &args.ttl {
        Some(raw) => parse_duration(raw).map_err(|e| usage(format!("--ttl: {e}")))?,
        None => std::time::Duration::from_secs(3600),
    };
    if ttl.is_zero() {
        return Err(usage("--ttl must be longer than 0s"));
    }
    let r = switchyard_core::config::Resolver::new(env);
    let Some(router) = r.optional(&crate::settings::ROUTER_URL).map_err(usage)? else {
        return Err(usage(
            "a preview link points at the public router: pass --router-url or set SWITCHYARD_ROUTER_URL",
        ));
    };
    let snap = super::snapshot(ctx).await?;
    match snap.get(id.as_str()) {
        None => {
            return Err(super::not_found(&id));
        }
        Some(d) if d.state == DeploymentState::Revoked => {
            return Err(usage(format!(
                "deployment {id} is revoked; it serves nobody"
            )));
        }
        Some(_) => {}
    }
    let keys = crate::checks::pin_keys(env)?;
    let now = UnixTime::now();
    let (pin, expires) = match &keys {
        Some(k) => (k.mint(&id, now, ttl), Some(now.plus(ttl))),
        None => (id.to_string(), None),
    };
    let url = format!("{router}/?{DEFAULT_QUERY_PARAM}={pin}");
    ctx.say(
        || match expires {
            Some(t) => format!("{url}\n(signed; works until {})\n", t.rfc3339()),
            None => format!(
                "{url}\n(strict mode is off: the bare id works as a pin for anyone who knows it)\n"
            ),
        },
        || {
            serde_json::json!({
                "url": url,
                "deployment_id": id,
                "signed": keys.is_some(),
                "expires_at": expires.map(UnixTime::rfc3339),
            })
        },
    );
    Ok(())
}
