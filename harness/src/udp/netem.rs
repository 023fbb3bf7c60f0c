//! The netem mode: two network namespaces joined by a veth pair, `tc qdisc
//! ... netem` on both ends, a server in one namespace and the probe in the
//! other; everything removed at the end, whatever happens.
//!
//! Needs root, iproute2 and a kernel with the netem qdisc; without any of
//! them it says which in one line and fails, and nothing else is affected.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::error::Error;
use crate::schema::udp::{NetemSpec, ProbeSummary};

/// The server's and the client's addresses on the veth pair.
pub const SERVER_IP: &str = "10.77.0.1";
const CLIENT_IP: &str = "10.77.0.2";

/// The `tc qdisc ... netem` arguments of a spec.
fn tc_args(spec: &NetemSpec) -> Vec<String> {
    let mut a = vec!["netem".to_owned()];
    if spec.delay_ms > 0.0 {
        a.extend(["delay".into(), format!("{}ms", spec.delay_ms)]);
        if spec.jitter_ms > 0.0 {
            a.push(format!("{}ms", spec.jitter_ms));
        }
    }
    if spec.loss_pct > 0.0 {
        a.extend(["loss".into(), format!("{}%", spec.loss_pct)]);
    }
    if spec.reorder_pct > 0.0 {
        a.extend(["reorder".into(), format!("{}%", spec.reorder_pct)]);
    }
    a
}

/// Two namespaces joined by veth, deleted on drop.
pub struct Namespaces {
    server: String,
    client: String,
}

fn run(args: &[&str]) -> Result<(), Error> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Tool {
            program: args[0].into(),
            detail: e.to_string(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Tool {
            program: args[0].into(),
            detail: format!(
                "`{}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        })
    }
}

/// Root and iproute2, or why not, in one line.
pub fn preflight() -> Result<(), Error> {
    if !rustix::process::geteuid().is_root() {
        return Err(Error::Unavailable {
            what: "netem mode".into(),
            why: "it needs root (it creates network namespaces and qdiscs); run it as root".into(),
        });
    }
    for tool in ["ip", "tc"] {
        let ok = Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(Error::Unavailable {
                what: "netem mode".into(),
                why: format!("it needs iproute2 (`{tool}` not found): apt-get install iproute2"),
            });
        }
    }
    Ok(())
}

impl Namespaces {
    /// Creates the namespaces and the veth pair, and applies `spec` to both ends.
    pub fn create(spec: &NetemSpec) -> Result<Namespaces, Error> {
        preflight()?;
        let tag = std::process::id();
        let ns = Namespaces {
            server: format!("sockbench-srv-{tag}"),
            client: format!("sockbench-cli-{tag}"),
        };
        let (vs, vc) = (format!("sbs{tag}"), format!("sbc{tag}"));
        // Names are checked against IFNAMSIZ (15) by the kernel.
        let (vs, vc) = (&vs[..vs.len().min(15)], &vc[..vc.len().min(15)]);
        run(&["ip", "netns", "add", &ns.server])?;
        run(&["ip", "netns", "add", &ns.client])?;
        run(&[
            "ip", "link", "add", vs, "netns", &ns.server, "type", "veth", "peer", "name", vc,
            "netns", &ns.client,
        ])?;
        for (name, dev, ip) in [(&ns.server, vs, SERVER_IP), (&ns.client, vc, CLIENT_IP)] {
            run(&[
                "ip",
                "-n",
                name,
                "addr",
                "add",
                &format!("{ip}/24"),
                "dev",
                dev,
            ])?;
            run(&["ip", "-n", name, "link", "set", dev, "up"])?;
            run(&["ip", "-n", name, "link", "set", "lo", "up"])?;
            if !spec.is_none() {
                let mut args: Vec<String> = [
                    "ip", "netns", "exec", name, "tc", "qdisc", "add", "dev", dev, "root",
                ]
                .map(String::from)
                .to_vec();
                args.extend(tc_args(spec));
                let argv: Vec<&str> = args.iter().map(String::as_str).collect();
                run(&argv).map_err(|e| match e {
                    Error::Tool { detail, .. } if detail.contains("unknown") => {
                        Error::Unavailable {
                            what: "netem mode".into(),
                            why: format!(
                                "this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM); tc said: {detail}"
                            ),
                        }
                    }
                    e => e,
                })?;
            }
        }
        Ok(ns)
    }

    /// `sockbench serve` of `backend` in the server namespace.
    pub fn server_command(&self, exe: &Path, backend: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.server]).arg(exe);
        c.args(["serve", "--backend", backend, "--no-fsync"]);
        c.args([
            "--tcp",
            &format!("{SERVER_IP}:0"),
            "--udp",
            &format!("{SERVER_IP}:0"),
        ]);
        c
    }

    /// Runs the probe from the client namespace (`sockbench udp-probe`).
    pub fn probe(
        &self,
        exe: &Path,
        to: SocketAddr,
        size: usize,
        rate: f64,
        duration: Duration,
    ) -> Result<ProbeSummary, Error> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.client])
            .arg(exe)
            .args([
                "udp-probe",
                "--to",
                &to.to_string(),
                "--size",
                &size.to_string(),
                "--rate",
                &rate.to_string(),
            ])
            .args(["--ms", &duration.as_millis().to_string()])
            .output()
            .map_err(Error::io("ip netns exec ... udp-probe"))?;
        if !out.status.success() {
            return Err(Error::Tool {
                program: "sockbench udp-probe".into(),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        serde_json::from_slice(&out.stdout).map_err(|e| Error::Invalid {
            input: "udp-probe output".into(),
            why: e.to_string(),
        })
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth pair, and the pair with it.
        let _ = run(&["ip", "netns", "del", &self.server]);
        let _ = run(&["ip", "netns", "del", &self.client]);
    }
}

impl From<&super::seq::ProbeResult> for ProbeSummary {
    fn from(r: &super::seq::ProbeResult) -> Self {
        ProbeSummary {
            sent: r.sent,
            received: r.received,
            duplicates: r.duplicates,
            out_of_order: r.out_of_order,
            corrupted: r.corrupted,
            lost: r.lost,
            jitter_us: r.jitter_us,
            p50_us: r.latency.value_at_quantile(0.5) as f64 / 1e3,
            p99_us: r.latency.value_at_quantile(0.99) as f64 / 1e3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_render_for_tc() {
        let s: NetemSpec = "loss=1%,delay=5ms,jitter=1ms,reorder=2%".parse().unwrap();
        assert_eq!(
            tc_args(&s),
            [
                "netem", "delay", "5ms", "1ms", "loss", "1%", "reorder", "2%"
            ]
        );
        assert!((s.round_trip_loss() - 0.0199).abs() < 1e-9);
        assert!("none".parse::<NetemSpec>().unwrap().is_none());
        assert!(
            "reorder=2%"
                .parse::<NetemSpec>()
                .unwrap_err()
                .to_string()
                .contains("delay")
        );
        assert!("bogus=1".parse::<NetemSpec>().is_err());
    }
}
