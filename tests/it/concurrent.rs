//! The files eic-ssh writes, written by many eic-ssh processes at once: no
//! entry lost, nothing torn, and a hand-edited known_hosts keeps its lines.

use eic_sim::World;

use crate::support::*;

const WRITERS: usize = 20;

/// `i-…a00` to `i-…a19`: running instances in the demo VPC, each with its
/// own host key on its console. No SSH server listens behind them.
fn world_with_many_instances() -> (World, Vec<(String, String)>) {
    let mut world = World::demo();
    let template = world.instances[0].clone();
    let mut hosts = Vec::new();
    for k in 0..WRITERS {
        let id = format!("i-00000000000000a{k:02}");
        let key = eic_ssh::aws::keypush::EphemeralKey::generate().unwrap();
        let public: Vec<&str> = key.public_openssh.split_whitespace().take(2).collect();
        let public = public.join(" ");
        let mut instance = template.clone();
        instance.id = id.clone();
        instance.private_ip = Some(format!("10.0.1.{}", 100 + k));
        instance.console_output = Some(format!(
            "boot noise\r\n-----BEGIN SSH HOST KEY KEYS-----\r\n{public} root@host\r\n-----END SSH HOST KEY KEYS-----\r\nlogin: "
        ));
        world.instances.push(instance);
        hosts.push((id, public));
    }
    (world, hosts)
}

#[async_test]
async fn twenty_processes_write_known_hosts_and_the_route_cache_at_once() {
    let (world, hosts) = world_with_many_instances();
    let f = Fixture::with_world(world).await;
    let known_hosts = f.home.path().join("known_hosts");
    // Edited by hand: comments, a blank line, a hashed entry and a last
    // line with no newline.
    let hand_edited = "# my hosts\n\nbastion ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n|1|c2FsdHNhbHRzYWx0c2FsdHNhbHQ=|aGFzaGhhc2hoYXNoaGFzaGhhc2g= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n# last, unterminated";
    std::fs::write(&known_hosts, hand_edited).unwrap();

    let mut runs = Vec::new();
    for (id, _) in &hosts {
        let (id, file) = (id.clone(), known_hosts.to_string_lossy().into_owned());
        let mut add = f.command();
        add.args(["host-keys", &id, "--add", "--known-hosts", &file]);
        runs.push(tokio::spawn(async move {
            (
                "host-keys",
                add.stdin(std::process::Stdio::null())
                    .output()
                    .await
                    .unwrap(),
            )
        }));
        // Each connects far enough to cache its route; nothing listens
        // behind the instance, so the command itself fails.
        let mut connect = f.command();
        connect.args(["--verify-host-key", "none", &id, "--", "true"]);
        runs.push(tokio::spawn(async move {
            (
                "connect",
                connect
                    .stdin(std::process::Stdio::null())
                    .output()
                    .await
                    .unwrap(),
            )
        }));
    }
    for run in runs {
        let (what, out) = tokio::time::timeout(std::time::Duration::from_secs(120), run)
            .await
            .unwrap()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        match what {
            "host-keys" => assert!(out.status.success(), "{stderr}"),
            _ => assert!(stderr.contains("closed by the endpoint"), "{stderr}"),
        }
    }

    // known_hosts: the hand-edited lines first, untouched and in order
    // (the unterminated one now ends with its newline), then each new host
    // exactly once, each line whole.
    let text = std::fs::read_to_string(&known_hosts).unwrap();
    assert!(text.starts_with(&format!("{hand_edited}\n")), "{text}");
    let added: Vec<&str> = text[hand_edited.len() + 1..].lines().collect();
    assert_eq!(added.len(), WRITERS, "{text}");
    for (id, public) in &hosts {
        let line = format!("{id} {public}");
        assert_eq!(
            added.iter().filter(|l| **l == line).count(),
            1,
            "{line} in:\n{text}"
        );
    }

    // The route cache: valid JSON with every instance's route.
    let cache = f.home.path().join(".cache/eic-ssh/routes.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cache).unwrap()).unwrap();
    let entries = json.as_object().unwrap();
    for (k, (id, _)) in hosts.iter().enumerate() {
        let entry = entries
            .iter()
            .find(|(key, _)| key.ends_with(id.as_str()))
            .unwrap_or_else(|| panic!("{id} missing from {json:#}"))
            .1;
        assert_eq!(
            entry["private_ip"].as_str(),
            Some(format!("10.0.1.{}", 100 + k).as_str())
        );
    }
}
