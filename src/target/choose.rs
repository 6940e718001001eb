//! Turning a target expression into the one instance a single-connection
//! command needs: by ID at once, else one `DescribeInstances` (with the
//! region's endpoints read alongside), and the picker when several match.

use std::sync::Arc;

use futures_util::future::try_join_all;

use crate::aws::Aws;
use crate::aws::ec2::{EndpointInfo, InstanceInfo};
use crate::error::{DidYouMean, Error};
use crate::target::Prefetched;
use crate::target::find;
use crate::target::syntax::{Target, TargetExpr};
use crate::term::{picker, table};

/// The instance a target names, and what was looked up to find it.
pub struct Chosen {
    pub instance_id: String,
    pub prefetched: Option<Arc<Prefetched>>,
}

/// Resolve `target` to one instance. An ID needs no call. Otherwise one
/// `DescribeInstances` with the expression's filter, and, when
/// `with_endpoints`, the region's endpoints at the same time (so the
/// connection that follows needs no further lookup). Several matches open
/// the picker when it can ask and `no_pick` is off, else exit 2 with the
/// list.
pub async fn choose(
    aws: &Aws,
    target: &Target,
    no_pick: bool,
    with_endpoints: bool,
) -> Result<Chosen, Error> {
    if let Some(id) = target.instance_id() {
        return Ok(Chosen {
            instance_id: id.to_owned(),
            prefetched: None,
        });
    }
    let endpoints = async {
        if with_endpoints {
            find::endpoints_in_region(aws.ec2()).await.map(Some)
        } else {
            Ok(None)
        }
    };
    let (mut found, endpoints) = tokio::try_join!(
        find::find_instances(aws.ec2(), &target.expr, &aws.region),
        endpoints
    )?;
    let index = choose_index(aws, &target.expr, &found, no_pick).await?;
    let instance = found.swap_remove(index);
    Ok(Chosen {
        instance_id: instance.id.clone(),
        prefetched: Some(Arc::new(Prefetched {
            instance,
            endpoints: endpoints.map(Arc::new),
        })),
    })
}

async fn choose_index(
    aws: &Aws,
    expr: &TargetExpr,
    found: &[InstanceInfo],
    no_pick: bool,
) -> Result<usize, Error> {
    match found.len() {
        0 => Err(no_match(aws, &[expr]).await),
        1 => Ok(0),
        count => {
            let lines = table::render(&instance_rows(found));
            if !no_pick && picker::available() {
                let (header, rows) = split_header(lines);
                picker::pick(
                    format!("{} matches {count} instances:", expr.describe()),
                    header,
                    rows,
                )
                .await
            } else {
                Err(Error::Ambiguous {
                    searched: expr.describe(),
                    count,
                    list: indent(&lines),
                })
            }
        }
    }
}

/// `eic-ssh` with no target, on a terminal: pick among the region's running
/// instances that have an endpoint in their VPC.
pub async fn pick_running(aws: &Aws) -> Result<Chosen, Error> {
    let (found, endpoints) = tokio::try_join!(
        find::instances_in_states(aws.ec2(), &["running"]),
        find::endpoints_in_region(aws.ec2())
    )?;
    let mut reachable: Vec<InstanceInfo> = found
        .into_iter()
        .filter(|i| find::endpoint_for(&endpoints, i).is_ok())
        .collect();
    if reachable.is_empty() {
        return Err(Error::NoMatch {
            searched: "any running instance with an EC2 Instance Connect Endpoint in its VPC"
                .into(),
            region: aws.region.clone(),
            identity: aws.identity(),
            close: Box::default(),
        });
    }
    let (header, rows) = split_header(table::render(&instance_rows(&reachable)));
    let index = picker::pick("Connect to which instance?".to_owned(), header, rows).await?;
    let instance = reachable.swap_remove(index);
    Ok(Chosen {
        instance_id: instance.id.clone(),
        prefetched: Some(Arc::new(Prefetched {
            instance,
            endpoints: Some(Arc::new(endpoints)),
        })),
    })
}

/// The failed lookup of `exprs`: the instances they match that are not
/// running, named with their state and how to start them; else what was
/// searched, in which region and as whom, with the subcommand or the Names
/// a mistyped word is close to. It costs one more `DescribeInstances` per
/// expression that is no Name, and one listing of the region's instances
/// for the Names.
pub async fn no_match(aws: &Aws, exprs: &[&TargetExpr]) -> Error {
    let names: Vec<&str> = exprs
        .iter()
        .filter_map(|e| match e {
            TargetExpr::Name(n) => Some(n.as_str()),
            _ => None,
        })
        .collect();
    let listing = async {
        match names.is_empty() {
            true => Ok(Vec::new()),
            false => find::instances_in_states(aws.ec2(), &find::LISTED_STATES).await,
        }
    };
    let others = try_join_all(
        exprs
            .iter()
            .filter(|e| !matches!(e, TargetExpr::Name(_)))
            .map(|e| {
                find::find_instances_in_states(aws.ec2(), e, &aws.region, &find::UNREACHABLE_STATES)
            }),
    );
    let (listing, others) = tokio::join!(listing, others);
    let listing = listing.unwrap_or_default();
    let named = listing
        .iter()
        .filter(|i| i.name.as_deref().is_some_and(|n| names.contains(&n)))
        .filter(|i| find::UNREACHABLE_STATES.contains(&i.state.as_str()))
        .cloned();
    let mut found: Vec<InstanceInfo> = Vec::new();
    for i in named.chain(others.unwrap_or_default().into_iter().flatten()) {
        if !found.iter().any(|x| x.id == i.id) {
            found.push(i);
        }
    }
    let searched: Vec<String> = exprs.iter().map(|e| e.describe()).collect();
    let searched = searched.join(" or ");
    if let Some(e) = not_running(aws, &searched, &found) {
        return e;
    }
    let known: Vec<&str> = listing.iter().filter_map(|i| i.name.as_deref()).collect();
    Error::NoMatch {
        searched,
        region: aws.region.clone(),
        identity: aws.identity(),
        close: Box::new(DidYouMean {
            typed: names.iter().map(|n| (*n).to_owned()).collect(),
            subcommand: None,
            names: names.iter().flat_map(|n| close_names(n, &known)).collect(),
        }),
    }
}

/// A lookup that matched nothing, with the subcommand among `subcommands`
/// that a Name it searched for is close to (`exce` → `exec`): the command
/// line knows the subcommands, the lookup does not. Any other error is
/// returned as it is.
pub fn suggest_subcommand(mut e: Error, subcommands: &[String]) -> Error {
    if let Error::NoMatch { close, .. } = &mut e {
        close.subcommand = close
            .typed
            .iter()
            .find_map(|n| closest(n, subcommands.iter().map(String::as_str), false));
    }
    e
}

/// Of `candidates`, the one closest to `typed`, if any is close (see
/// [`is_close`]); `prefix`: a candidate that `typed` begins counts too.
fn closest<'a>(
    typed: &str,
    candidates: impl Iterator<Item = &'a str>,
    prefix: bool,
) -> Option<String> {
    candidates
        .filter_map(|c| distance(typed, c, prefix).map(|d| (d, c)))
        .min()
        .map(|(_, c)| c.to_owned())
}

/// Up to five of the Names `known` that `typed` is close to, closest first.
fn close_names(typed: &str, known: &[&str]) -> Vec<String> {
    let mut close: Vec<(usize, &str)> = known
        .iter()
        .filter_map(|k| distance(typed, k, true).map(|d| (d, *k)))
        .collect();
    close.sort();
    close.dedup_by(|a, b| a.1 == b.1);
    close
        .into_iter()
        .take(5)
        .map(|(_, k)| k.to_owned())
        .collect()
}

/// How far `typed` is from `candidate` when it is close: the same but for
/// case, or at most one edit away (two for words over four characters; a
/// transposition is one), or with `prefix`, the candidate's beginning (at
/// least three characters).
fn distance(typed: &str, candidate: &str, prefix: bool) -> Option<usize> {
    let (t, c) = (typed.to_lowercase(), candidate.to_lowercase());
    let limit = match t.chars().count() {
        0 => return None,
        1..=4 => 1,
        _ => 2,
    };
    let d = strsim::damerau_levenshtein(&t, &c);
    if d <= limit {
        return Some(d);
    }
    (prefix && t.chars().count() >= 3 && c.starts_with(&t)).then_some(limit + 1)
}

/// What to say of `found`, the instances `searched` matched, when none of
/// them is running: its state and how to start it.
pub fn not_running(aws: &Aws, searched: &str, found: &[InstanceInfo]) -> Option<Error> {
    if found.is_empty()
        || found
            .iter()
            .any(|i| find::LIVE_STATES.contains(&i.state.as_str()))
    {
        return None;
    }
    let profile = aws.chosen_profile().map(str::to_owned);
    Some(match found {
        [one] => Error::InstanceNotRunning {
            instance: one.id.clone(),
            name: one.name.clone(),
            state: one.state.clone(),
            region: aws.region.clone(),
            profile,
        },
        several => Error::NoneRunning {
            searched: searched.to_owned(),
            instances: several
                .iter()
                .map(|i| (i.id.clone(), i.state.clone()))
                .collect(),
            region: aws.region.clone(),
            profile,
        },
    })
}

/// The header and rows: id, Name, state, private IP, availability zone.
pub fn instance_rows(found: &[InstanceInfo]) -> Vec<Vec<String>> {
    let mut rows = vec![
        ["ID", "NAME", "STATE", "PRIVATE IP", "AZ"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for i in found {
        rows.push(vec![
            i.id.clone(),
            i.name.clone().unwrap_or_else(|| "-".into()),
            i.state.clone(),
            i.private_ip
                .map(|ip| ip.to_string())
                .unwrap_or_else(|| "-".into()),
            i.availability_zone.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    rows
}

/// The endpoint that would serve `instance`, or `no endpoint (why)`.
pub fn endpoint_cell(endpoints: &[EndpointInfo], instance: &InstanceInfo) -> String {
    match find::endpoint_for(endpoints, instance) {
        Ok(ep) => ep.id.clone(),
        Err(why) => format!("no endpoint ({why})"),
    }
}

fn split_header(mut lines: Vec<String>) -> (String, Vec<String>) {
    let header = if lines.is_empty() {
        String::new()
    } else {
        lines.remove(0)
    };
    (header, lines)
}

fn indent(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mistyped_words_are_close_to_what_was_meant() {
        let subcommands = ["proxy", "exec", "ls", "cp", "cache", "doctor", "restrict"];
        let closest_sub = |typed: &str| closest(typed, subcommands.iter().copied(), false);
        assert_eq!(closest_sub("exce").as_deref(), Some("exec"));
        assert_eq!(closest_sub("EXEC").as_deref(), Some("exec"));
        assert_eq!(closest_sub("doctr").as_deref(), Some("doctor"));
        assert_eq!(closest_sub("restirct").as_deref(), Some("restrict"));
        assert_eq!(closest_sub("lss").as_deref(), Some("ls"));
        assert_eq!(closest_sub("cache").as_deref(), Some("cache"));
        // Far from every subcommand: a Name, not a typo.
        for name in ["web-1", "db", "bastion", "e"] {
            assert_eq!(closest_sub(name), None, "{name}");
        }
        let known = ["web-1", "web-2", "api", "isolated", "web-1"];
        assert_eq!(close_names("web1", &known), ["web-1"]);
        assert_eq!(close_names("wbe-1", &known), ["web-1", "web-2"]);
        assert_eq!(close_names("web", &known), ["web-1", "web-2"]);
        assert_eq!(close_names("isolatd", &known), ["isolated"]);
        assert!(close_names("zzz-9", &known).is_empty());
        assert!(close_names("ap", &known).len() == 1);
    }
}
