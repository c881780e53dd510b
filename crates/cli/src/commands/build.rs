//! `berth build`: the context directory sent as a tar (`.dockerignore` applied here, the
//! Dockerfile added when it lies outside), `POST /build` with docker build's flags, and the
//! classic builder's stream shown as it comes.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use berth_build::ignore::Matcher;
use clap::Args;
use serde_json::Value;

use super::{Ctx, StatusError};
use crate::units;

#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Name and optionally a tag in the "name:tag" format
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    pub tag: Vec<String>,
    /// Name of the Dockerfile (default: "PATH/Dockerfile"); "-" reads it from stdin
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<String>,
    /// Set build-time variables (KEY=VALUE, or KEY to take the value from the environment)
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_arg: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Always attempt to pull a newer version of the image
    #[arg(long)]
    pub pull: bool,
    /// Set metadata for an image (KEY=VALUE)
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Set target platform for build (os/arch[/variant])
    #[arg(long, env = "DOCKER_DEFAULT_PLATFORM")]
    pub platform: Option<String>,
    /// Set the networking mode for the RUN instructions during build (default, none, host, NAME)
    #[arg(long, default_value = "default")]
    pub network: String,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", value_name = "HOST:IP")]
    pub add_host: Vec<String>,
    /// Images to consider as cache sources
    #[arg(long = "cache-from", value_name = "IMAGE")]
    pub cache_from: Vec<String>,
    /// Write the image ID to the file
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Suppress the build output and print image ID on success
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Size of /dev/shm of the RUN containers (e.g. 64m)
    #[arg(long = "shm-size", value_name = "BYTES")]
    pub shm_size: Option<String>,
    /// Memory limit of the RUN containers
    #[arg(short = 'm', long, value_name = "BYTES")]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "BYTES")]
    pub memory_swap: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "INT")]
    pub cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "CPUS")]
    pub cpuset_cpus: Option<String>,
    /// Limit the CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", value_name = "INT")]
    pub cpu_period: Option<i64>,
    /// Limit the CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", value_name = "INT")]
    pub cpu_quota: Option<i64>,
    /// Remove intermediate containers after a successful build (always on)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, hide = true)]
    pub rm: bool,
    /// Always remove intermediate containers (always on)
    #[arg(long = "force-rm", hide = true)]
    pub force_rm: bool,
    /// Set type of progress output (auto, plain, tty, quiet)
    #[arg(long, default_value = "auto")]
    pub progress: String,
    /// Output destination (type=local,dest=DIR | type=tar,dest=FILE | type=docker)
    #[arg(short = 'o', long, value_name = "TYPE=…,DEST=…")]
    pub output: Option<String>,
    /// Secret to expose to the build (id=NAME[,src=FILE|,env=VAR]): mounted only where
    /// RUN --mount=type=secret asks, never in a layer
    #[arg(long, value_name = "id=…")]
    pub secret: Vec<String>,
    /// SSH agent socket to expose to the build (default|ID[=SOCKET]; default: $SSH_AUTH_SOCK)
    #[arg(long, value_name = "default|ID[=SOCKET]")]
    pub ssh: Vec<String>,
    /// Build context: a directory, "-" for a tar (or a Dockerfile) on stdin, or a URL the
    /// daemon fetches: a git repository (git://…, git@…, github.com/…, https://….git, each
    /// with #ref:subdir), a tar or a Dockerfile over http(s)
    #[arg(value_name = "PATH|URL|-")]
    pub context: String,
}

/// Where the build's result goes besides the image store (`--output`).
#[derive(Debug, PartialEq, Eq)]
enum OutputSpec {
    Docker,
    Local(PathBuf),
    Tar(Option<PathBuf>),
}

fn parse_output(s: &str) -> anyhow::Result<OutputSpec> {
    let mut kind = None;
    let mut dest = None;
    for part in s.split(',') {
        match part.split_once('=') {
            Some(("type", v)) => kind = Some(v.to_string()),
            Some(("dest", v)) => dest = Some(PathBuf::from(v)),
            None if kind.is_none() && dest.is_none() && !part.is_empty() => {
                // `-o DIR` is `type=local,dest=DIR`; `-o -` a tar on stdout.
                return Ok(if part == "-" {
                    OutputSpec::Tar(None)
                } else {
                    OutputSpec::Local(PathBuf::from(part))
                });
            }
            _ => return Err(StatusError::new(1, format!("invalid output {s:?}: use type=local,dest=DIR, type=tar,dest=FILE or type=docker")).into()),
        }
    }
    match (kind.as_deref(), dest) {
        (Some("docker") | Some("image"), _) => Ok(OutputSpec::Docker),
        (Some("local"), Some(d)) => Ok(OutputSpec::Local(d)),
        (Some("tar"), d) => Ok(OutputSpec::Tar(d.filter(|p| p.as_os_str() != "-"))),
        _ => Err(StatusError::new(
            1,
            format!(
                "invalid output {s:?}: use type=local,dest=DIR, type=tar,dest=FILE or type=docker"
            ),
        )
        .into()),
    }
}

fn key_values(
    list: &[String],
    env_fallback: bool,
    what: &str,
) -> anyhow::Result<BTreeMap<String, Option<String>>> {
    let mut m = BTreeMap::new();
    for kv in list {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                m.insert(k.to_string(), Some(v.to_string()));
            }
            None if !kv.is_empty() => {
                let v = if env_fallback {
                    std::env::var(kv).ok()
                } else {
                    Some(String::new())
                };
                if env_fallback && v.is_none() {
                    continue;
                }
                m.insert(kv.clone(), v);
            }
            _ => {
                return Err(StatusError::new(
                    125,
                    format!("invalid {what} {kv:?}: KEY=VALUE expected"),
                )
                .into());
            }
        }
    }
    Ok(m)
}

/// The context: its directory (none for a tar on stdin), the Dockerfile's name in the tar
/// and its text when it has to be added.
struct Context {
    dir: Option<PathBuf>,
    dockerfile: String,
    extra: Option<(String, Vec<u8>)>,
    ignore: Matcher,
    /// Build secrets, sent in the tar below a directory of their own.
    secrets: Option<(String, Vec<Secret>)>,
}

/// A build secret: its id and value.
type Secret = (String, Vec<u8>);

/// `--secret id=x[,src=FILE|,source=FILE|,env=VAR]` (type=file and type=env too): the value.
fn read_secret(spec: &str) -> anyhow::Result<Secret> {
    let bad = || {
        StatusError::new(
            1,
            format!("invalid secret {spec:?}: id=NAME,src=FILE or id=NAME,env=VAR expected"),
        )
    };
    let (mut id, mut src, mut env, mut kind) = (None, None, None, None);
    for part in spec.split(',') {
        match part.split_once('=').ok_or_else(bad)? {
            ("id", v) => id = Some(v.to_string()),
            ("src" | "source", v) => src = Some(v.to_string()),
            ("env", v) => env = Some(v.to_string()),
            ("type", v) => kind = Some(v.to_string()),
            _ => return Err(bad().into()),
        }
    }
    let id = id.ok_or_else(bad)?;
    if id.is_empty() || id.contains('/') {
        return Err(bad().into());
    }
    let value =
        match (kind.as_deref(), src, env) {
            (Some("env"), Some(v), None) | (_, None, Some(v)) => std::env::var(&v)
                .map_err(|_| {
                    StatusError::new(
                        1,
                        format!("secret {id}: environment variable {v} is not set"),
                    )
                })?
                .into_bytes(),
            (_, Some(f), None) => std::fs::read(&f)
                .map_err(|e| StatusError::new(1, format!("secret {id}: {f}: {e}")))?,
            // Neither: an environment variable or a file named as the id.
            (_, None, None) => match std::env::var(&id) {
                Ok(v) => v.into_bytes(),
                Err(_) => std::fs::read(&id)
                    .map_err(|e| StatusError::new(1, format!("secret {id}: {e}")))?,
            },
            _ => return Err(bad().into()),
        };
    Ok((id, value))
}

/// `--ssh default` or `--ssh ID=SOCKET`: the agent socket, absolute.
fn ssh_socket(spec: &str) -> anyhow::Result<String> {
    let (id, path) = match spec.split_once('=') {
        Some((id, p)) => (id.to_string(), p.to_string()),
        None => (
            spec.to_string(),
            std::env::var("SSH_AUTH_SOCK").map_err(|_| {
                StatusError::new(
                    1,
                    format!(
                        "--ssh {spec}: SSH_AUTH_SOCK is not set: start an agent or give ID=SOCKET"
                    ),
                )
            })?,
        ),
    };
    let abs = std::path::Path::new(&path)
        .canonicalize()
        .map_err(|e| StatusError::new(1, format!("--ssh {spec}: {path}: {e}")))?;
    Ok(format!("{id}={}", abs.display()))
}

fn read_ignore(dir: &Path, dockerfile: Option<&Path>) -> anyhow::Result<Matcher> {
    // `<Dockerfile>.dockerignore` beside the Dockerfile wins over the context's.
    let mut candidates = Vec::new();
    if let Some(df) = dockerfile {
        let mut p = df.as_os_str().to_os_string();
        p.push(".dockerignore");
        candidates.push(PathBuf::from(p));
    }
    candidates.push(dir.join(".dockerignore"));
    for c in candidates {
        if let Ok(text) = std::fs::read_to_string(&c) {
            return Matcher::parse(&text)
                .map_err(|e| StatusError::new(1, format!("{}: {e}", c.display())).into());
        }
    }
    Matcher::parse("").map_err(|e| anyhow::anyhow!("{e}"))
}

/// A context the daemon fetches (docker's CLI clones git repositories itself; berth leaves
/// every remote to the daemon, which fetches it the same way for every client).
fn is_remote(context: &str) -> bool {
    ["http://", "https://", "git://", "git@", "github.com/"]
        .iter()
        .any(|p| context.starts_with(p))
}

fn context(a: &BuildArgs) -> anyhow::Result<Context> {
    let secrets = if a.secret.is_empty() {
        None
    } else {
        let list = a
            .secret
            .iter()
            .map(|s| read_secret(s))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Some((
            format!(
                ".berth-secrets-{}",
                random_name().trim_start_matches(".dockerfile.")
            ),
            list,
        ))
    };
    if a.context == "-" {
        if secrets.is_some() {
            return Err(StatusError::new(1, "--secret needs a context directory (not -)").into());
        }
        return Ok(Context {
            dir: None,
            dockerfile: a.file.clone().unwrap_or_else(|| "Dockerfile".into()),
            extra: None,
            ignore: Matcher::parse("").map_err(|e| anyhow::anyhow!("{e}"))?,
            secrets: None,
        });
    }
    let dir = PathBuf::from(&a.context);
    if !dir.is_dir() {
        return Err(StatusError::new(
            1,
            format!("unable to prepare context: path {:?} not found", a.context),
        )
        .into());
    }
    let dir = dir.canonicalize()?;
    let (dockerfile, extra, df_path) = match a.file.as_deref() {
        Some("-") => {
            let mut text = Vec::new();
            io::stdin().read_to_end(&mut text)?;
            (random_name(), Some(text), None)
        }
        Some(f) => {
            let p = Path::new(f);
            let abs = if p.is_absolute() {
                p.to_path_buf()
            } else {
                std::env::current_dir()?.join(p)
            };
            let abs = abs.canonicalize().map_err(|_| {
                StatusError::new(1, format!("unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {f}: no such file or directory"))
            })?;
            match abs.strip_prefix(&dir) {
                Ok(rel) => (rel.to_string_lossy().to_string(), None, Some(abs.clone())),
                Err(_) => (random_name(), Some(std::fs::read(&abs)?), Some(abs.clone())),
            }
        }
        None => {
            let p = dir.join("Dockerfile");
            if !p.exists() {
                return Err(StatusError::new(1, format!("unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {}: no such file or directory", p.display())).into());
            }
            ("Dockerfile".to_string(), None, Some(p))
        }
    };
    let ignore = read_ignore(&dir, df_path.as_deref())?;
    Ok(Context {
        dockerfile: dockerfile.clone(),
        extra: extra.map(|t| (dockerfile, t)),
        dir: Some(dir),
        ignore,
        secrets,
    })
}

fn random_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(".dockerfile.{:08x}{:08x}", std::process::id(), nanos)
}

/// Writes the context as a tar: owners 0:0 as docker's CLI sends them, excluded paths left
/// out (a directory is entered anyway when an exception may re-include something in it).
fn write_context(ctx: &Context, w: impl Write) -> io::Result<()> {
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Deterministic);
    if let Some(dir) = &ctx.dir {
        let keep = [ctx.dockerfile.as_str(), ".dockerignore"];
        walk(&mut b, dir, Path::new(""), ctx, &keep)?;
    }
    if let Some((name, text)) = &ctx.extra {
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        b.append_data(&mut h, name, text.as_slice())?;
    }
    if let Some((dir, list)) = &ctx.secrets {
        for (id, value) in list {
            let mut h = tar::Header::new_gnu();
            h.set_size(value.len() as u64);
            h.set_mode(0o400);
            h.set_mtime(0);
            b.append_data(&mut h, format!("{dir}/{id}"), value.as_slice())?;
        }
    }
    b.into_inner()?.flush()
}

fn walk<W: Write>(
    b: &mut tar::Builder<W>,
    root: &Path,
    rel: &Path,
    ctx: &Context,
    keep: &[&str],
) -> io::Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(root.join(rel))?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    names.sort();
    for n in names {
        let r = rel.join(&n);
        let s = r.to_string_lossy();
        let meta = std::fs::symlink_metadata(root.join(&r))?;
        let excluded = ctx.ignore.excluded(&s) && !keep.contains(&s.as_ref());
        if meta.is_dir() {
            if !excluded {
                b.append_path_with_name(root.join(&r), &r)?;
            }
            if !excluded || ctx.ignore.may_reinclude_under(&s) {
                walk(b, root, &r, ctx, keep)?;
            }
        } else if !excluded && (meta.is_file() || meta.file_type().is_symlink()) {
            // Sockets, fifos and devices stay out, as with docker.
            b.append_path_with_name(root.join(&r), &r)?;
        }
    }
    Ok(())
}

fn size(flag: &str, v: &Option<String>) -> anyhow::Result<Option<i64>> {
    match v.as_deref() {
        None | Some("") => Ok(None),
        Some("-1") => Ok(Some(-1)),
        Some(s) => units::parse_size(s, true).map(Some).map_err(|_| {
            StatusError::new(125, format!("invalid argument {s:?} for \"{flag}\" flag")).into()
        }),
    }
}

pub fn build(ctx: &Ctx, a: BuildArgs) -> anyhow::Result<i32> {
    let output = a.output.as_deref().map(parse_output).transpose()?;
    let build_args = key_values(&a.build_arg, true, "build argument")?;
    let labels: BTreeMap<String, String> = key_values(&a.label, false, "label")?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect();
    let remote = is_remote(&a.context).then(|| a.context.clone());
    if remote.is_some() && !a.secret.is_empty() {
        return Err(StatusError::new(1, "--secret needs a context directory (not a URL)").into());
    }
    let c = match &remote {
        Some(_) => Context {
            dir: None,
            dockerfile: a.file.clone().unwrap_or_else(|| "Dockerfile".into()),
            extra: None,
            ignore: Matcher::parse("").map_err(|e| anyhow::anyhow!("{e}"))?,
            secrets: None,
        },
        None => context(&a)?,
    };
    let ssh = a
        .ssh
        .iter()
        .map(|s| ssh_socket(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let client = ctx.client()?;
    let mut req = client
        .post("/build")
        .query("dockerfile", &c.dockerfile)
        .query("buildargs", serde_json::to_string(&build_args)?)
        .query("labels", serde_json::to_string(&labels)?)
        .flag("nocache", a.no_cache)
        .flag("pull", a.pull)
        .flag("q", a.quiet || a.progress == "quiet")
        .query("rm", "1")
        .flag("forcerm", a.force_rm)
        .query("networkmode", &a.network)
        .query_opt("target", a.target.as_deref())
        .query_opt("platform", a.platform.as_deref())
        .query_opt("cpusetcpus", a.cpuset_cpus.as_deref())
        .query("version", "1");
    for t in &a.tag {
        req = req.query("t", t);
    }
    if let Some((dir, _)) = &c.secrets {
        req = req.query("berth-secrets", dir);
    }
    for s in &ssh {
        req = req.query("berth-ssh", s);
    }
    if !a.add_host.is_empty() {
        req = req.query("extrahosts", a.add_host.join(","));
    }
    if !a.cache_from.is_empty() {
        req = req.query("cachefrom", serde_json::to_string(&a.cache_from)?);
    }
    if let Some(r) = &remote {
        req = req.query("remote", r);
    }
    for (k, v) in [
        ("shmsize", size("--shm-size", &a.shm_size)?),
        ("memory", size("--memory", &a.memory)?),
        ("memswap", size("--memory-swap", &a.memory_swap)?),
        ("cpushares", a.cpu_shares),
        ("cpuperiod", a.cpu_period),
        ("cpuquota", a.cpu_quota),
    ] {
        if let Some(v) = v {
            req = req.query(k, v.to_string());
        }
    }
    // The tar is written by a thread into a pipe the request reads, so a large context
    // streams; the whole body is sent before the answer is read.
    let (reader, writer) = io::pipe()?;
    let (body, writer_thread): (Box<dyn Read>, _) = if remote.is_some() {
        (Box::new(io::empty()), None)
    } else if c.dir.is_none() {
        (Box::new(io::stdin()), None)
    } else {
        let h = std::thread::spawn(move || write_context(&c, writer));
        (Box::new(reader), Some(h))
    };
    let resp = req.body_stream("application/x-tar", body, None).send();
    if let Some(h) = writer_thread {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(
                    StatusError::new(1, format!("error sending the build context: {e}")).into(),
                );
            }
            Err(_) => return Err(StatusError::new(1, "error sending the build context").into()),
        }
    }
    let resp = resp?;
    let quiet = a.quiet || a.progress == "quiet";
    let live = !quiet
        && match a.progress.as_str() {
            "tty" => true,
            "auto" => crate::term::stdout_is_tty(),
            "plain" => false,
            p => {
                return Err(StatusError::new(
                    125,
                    format!("invalid progress mode {p:?}: use auto, plain, tty or quiet"),
                )
                .into());
            }
        };
    let id = show(resp, quiet, live)?;
    let Some(id) = id else {
        return Ok(1);
    };
    if let Some(p) = &a.iidfile {
        std::fs::write(p, &id)
            .map_err(|e| StatusError::new(1, format!("failed to write image ID to file: {e}")))?;
    }
    if let Some(o) = output {
        export(ctx, &id, o)?;
    }
    Ok(0)
}

/// Shows the stream; returns the image id, or `None` when the build failed (the error
/// printed on stderr).
fn show(resp: crate::client::Response, quiet: bool, live: bool) -> anyhow::Result<Option<String>> {
    let mut out = io::stdout().lock();
    let mut id = None;
    let mut failed = false;
    let mut view = live.then(|| {
        let width = crate::term::size().map(|s| s.1 as usize).unwrap_or(80);
        super::build_view::View::new(width)
    });
    crate::client::json_stream(resp, |m: Value| {
        if let Some(e) = m
            .get("errorDetail")
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
        {
            if let Some(v) = view.as_mut() {
                v.end(true);
                v.draw(&mut out)?;
            }
            eprintln!("{e}");
            failed = true;
            return Ok(());
        }
        if let Some(i) = m
            .get("aux")
            .and_then(|a| a.get("ID"))
            .and_then(Value::as_str)
        {
            id = Some(i.to_string());
        }
        if quiet {
            return Ok(());
        }
        if let Some(v) = view.as_mut() {
            if let Some(s) = m.get("stream").and_then(Value::as_str) {
                v.stream(s);
                v.draw(&mut out)?;
            }
            return Ok(());
        }
        if let Some(s) = m.get("stream").and_then(Value::as_str) {
            out.write_all(s.as_bytes())?;
        } else if let Some(s) = m.get("status").and_then(Value::as_str) {
            match m.get("id").and_then(Value::as_str) {
                Some(i) => writeln!(out, "{i}: {s}")?,
                None => writeln!(out, "{s}")?,
            }
        }
        out.flush()?;
        Ok(())
    })?;
    if failed {
        return Ok(None);
    }
    if let Some(v) = view.as_mut() {
        v.end(false);
        v.draw(&mut out)?;
        if let Some(i) = &id {
            writeln!(out, " => writing image {i}")?;
        }
    }
    if quiet && let Some(i) = &id {
        writeln!(out, "{i}")?;
    }
    Ok(id)
}

/// `--output`: the image's filesystem as a directory or a tar, through a container made
/// for the copy and removed after.
fn export(ctx: &Ctx, id: &str, o: OutputSpec) -> anyhow::Result<()> {
    if o == OutputSpec::Docker {
        return Ok(());
    }
    let client = ctx.client()?;
    let created: Value = client
        .post("/containers/create")
        .json(&serde_json::json!({"Image": id, "Cmd": ["/"], "Entrypoint": []}))
        .send_json()?;
    let cid = created
        .get("Id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let res = (|| -> anyhow::Result<()> {
        let resp = client.get(&format!("/containers/{cid}/export")).send()?;
        match &o {
            OutputSpec::Local(dir) => {
                std::fs::create_dir_all(dir)?;
                let mut ar = tar::Archive::new(resp);
                ar.set_preserve_permissions(true);
                ar.unpack(dir)?;
            }
            OutputSpec::Tar(Some(f)) => {
                let mut file = std::fs::File::create(f)?;
                let mut r = resp;
                io::copy(&mut r, &mut file)?;
            }
            OutputSpec::Tar(None) => {
                let mut r = resp;
                io::copy(&mut r, &mut io::stdout().lock())?;
            }
            OutputSpec::Docker => {}
        }
        Ok(())
    })();
    client
        .delete(&format!("/containers/{cid}"))
        .query("force", "1")
        .send_ok()?;
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_parse_as_docker_build_takes_them() {
        assert_eq!(
            parse_output("type=local,dest=out").unwrap(),
            OutputSpec::Local("out".into())
        );
        assert_eq!(
            parse_output("out").unwrap(),
            OutputSpec::Local("out".into())
        );
        assert_eq!(
            parse_output("type=tar,dest=x.tar").unwrap(),
            OutputSpec::Tar(Some("x.tar".into()))
        );
        assert_eq!(parse_output("-").unwrap(), OutputSpec::Tar(None));
        assert_eq!(parse_output("type=docker").unwrap(), OutputSpec::Docker);
        assert!(parse_output("type=registry").is_err());
    }

    #[test]
    fn build_args_take_values_or_the_environment() {
        // SAFETY-free: a variable of this test's own name.
        let m = key_values(
            &["A=1".into(), "B=".into(), "BERTH_TEST_UNSET_VAR_X".into()],
            true,
            "x",
        )
        .unwrap();
        assert_eq!(m.get("A"), Some(&Some("1".into())));
        assert_eq!(m.get("B"), Some(&Some(String::new())));
        assert!(!m.contains_key("BERTH_TEST_UNSET_VAR_X"));
        assert!(key_values(&["=x".into()], true, "x").is_err());
    }
}
