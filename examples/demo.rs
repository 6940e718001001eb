//! `cargo run --example demo`: the whole real flow against the built-in
//! local simulation.
//!
//! It starts the AWS simulator (EC2 + EC2 Instance Connect APIs and the EICE
//! websocket endpoint, all on loopback with their own CA) and a built-in SSH
//! server standing in for the instance, then runs the real `eic-ssh` command
//! line in a child process configured only through standard AWS settings
//! (`AWS_ENDPOINT_URL_*`, `AWS_CA_BUNDLE`, credentials), and prints what the
//! remote command printed.

use std::process::{ExitCode, Stdio};

use eic_sim::builtin_sshd::start_builtin_sshd;
use eic_sim::{Simulator, World};

const CHILD: &str = "EIC_SSH_DEMO_CHILD";

fn main() -> anyhow::Result<ExitCode> {
    // The child is the real eic-ssh command line, unchanged.
    if std::env::var_os(CHILD).is_some() {
        return Ok(eic_ssh::main_with_args(std::env::args_os()));
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(demo())
}

async fn demo() -> anyhow::Result<ExitCode> {
    let sim = Simulator::start(World::demo()).await?;
    let instance = "i-0123456789abcdef0";
    let sshd = start_builtin_sshd(&sim, instance).await?;
    // The instance's boot console shows its host key, as cloud-init prints
    // it, so that eic-ssh verifies the first contact instead of trusting it.
    let key: Vec<&str> = sshd.host_key_pub.split_whitespace().take(2).collect();
    let console = format!(
        "ec2: -----BEGIN SSH HOST KEY KEYS-----\r\nec2: {} root@ip-10-0-1-10\r\nec2: -----END SSH HOST KEY KEYS-----\r\n",
        key.join(" ")
    );
    sim.set_world(|w| {
        for i in w.instances.iter_mut().filter(|i| i.id == instance) {
            i.console_output = Some(console.clone());
        }
    });
    // A private HOME with a clean AWS configuration: only what the
    // simulator gives.
    let home = sim.client_home()?;

    println!(
        "simulated AWS at {} (region us-east-1), endpoint DnsName {}",
        sim.api_url(),
        sim.eice_dns()
    );
    let command = "echo \"hello from $(whoami) on the simulated instance\"; uname -sr";
    println!("$ eic-ssh {instance} -- '{command}'\n");

    // Only the hermetic environment (a developer's AWS_PROFILE or
    // AWS_SESSION_TOKEN must not reach the simulator), and NO_COLOR if set.
    let mut child = tokio::process::Command::new(std::env::current_exe()?);
    child
        .env_clear()
        .envs(home.env())
        .envs(std::env::var_os("NO_COLOR").map(|v| ("NO_COLOR", v)))
        .env(CHILD, "1")
        .args(["-v", "-l", "ec2-user", instance, "--", command])
        .stdin(Stdio::null());
    let status = child.status().await?;
    println!("\neic-ssh exited with {status}");
    println!("requests the simulator served, in order:");
    for e in sim.request_log() {
        println!(
            "  {:<34} HTTP {} in {:>4} ms {}",
            e.op,
            e.status,
            e.finished.duration_since(e.started).as_millis(),
            e.detail
        );
    }
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
