//! A small command line over the registry client, for the benchmark and for trying things:
//!
//! ```text
//! regctl --root DIR [--driver overlay|vfs] [--quiet] pull [--platform os/arch] REF
//! regctl --root DIR [--quiet] push [--zstd] [--gzip-level N] REF
//! regctl --root DIR load FILE [REF]
//! regctl login SERVER USER PASSWORD
//! ```
//!
//! Credentials come from `~/.docker/config.json` (`regctl login` stores them there).

use std::process::ExitCode;
use std::sync::Arc;

use berth_image::{Driver, ImageStore, Reference};
use berth_registry::{
    Client, ClientConfig, Compression, CredentialStore, PushOptions, Renderer, parse_platform,
};

fn usage() -> ExitCode {
    eprintln!(
        "usage: regctl --root DIR [--driver overlay|vfs] [--quiet] pull [--platform P] REF\n       regctl --root DIR [--quiet] push [--zstd] [--gzip-level N] REF\n       regctl --root DIR load FILE [REF]\n       regctl login SERVER USER PASSWORD"
    );
    ExitCode::from(2)
}

fn print_chain(e: &dyn std::error::Error) {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    eprintln!("error: {s}");
}

fn main() -> ExitCode {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut root = None;
    let mut driver = Driver::Overlay;
    let mut quiet = false;
    let mut platform = None;
    let mut zstd = false;
    let mut config = ClientConfig::default();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--root" if i + 1 < args.len() => {
                root = Some(args.remove(i + 1));
                args.remove(i);
            }
            "--driver" if i + 1 < args.len() => {
                let d = args.remove(i + 1);
                args.remove(i);
                match Driver::parse(&d) {
                    Some(d) => driver = d,
                    None => return usage(),
                }
            }
            "--platform" if i + 1 < args.len() => {
                let p = args.remove(i + 1);
                args.remove(i);
                match parse_platform(&p) {
                    Ok(p) => platform = Some(p),
                    Err(e) => {
                        print_chain(&e);
                        return ExitCode::from(2);
                    }
                }
            }
            "--quiet" | "-q" => {
                quiet = true;
                args.remove(i);
            }
            "--gzip-level" if i + 1 < args.len() => {
                let l = args.remove(i + 1);
                args.remove(i);
                match l.parse() {
                    Ok(l) => config.gzip_level = l,
                    Err(_) => return usage(),
                }
            }
            "--zstd" => {
                zstd = true;
                args.remove(i);
            }
            _ => i += 1,
        }
    }
    let Some(cmd) = args.first().cloned() else {
        return usage();
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            print_chain(&e);
            return ExitCode::FAILURE;
        }
    };
    let client = match Client::new(config) {
        Ok(c) => c,
        Err(e) => {
            print_chain(&e);
            return ExitCode::FAILURE;
        }
    };
    if cmd == "login" {
        let [_, server, user, password] = &args[..] else {
            return usage();
        };
        return match rt.block_on(client.login_password(server, user, password)) {
            Ok(r) => {
                let mut auth = berth_registry::AuthConfig::basic(server, user, password);
                if let Some(t) = r.identity_token {
                    auth.identity_token = t;
                    auth.password.clear();
                }
                if let Some(cs) = CredentialStore::default_location()
                    && let Err(e) = cs.store(server, &auth)
                {
                    print_chain(&e);
                    return ExitCode::FAILURE;
                }
                println!("{}", r.status);
                ExitCode::SUCCESS
            }
            Err(e) => {
                print_chain(&e);
                ExitCode::FAILURE
            }
        };
    }
    let Some(root) = root else {
        return usage();
    };
    let store = match ImageStore::open(std::path::Path::new(&root), driver) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            print_chain(&e);
            return ExitCode::FAILURE;
        }
    };
    if cmd == "load" {
        let Some(file) = args.get(1) else {
            return usage();
        };
        let r = (|| -> Result<(), Box<dyn std::error::Error>> {
            let mut f = std::fs::File::open(file)?;
            let loaded = store.load(&mut f, &Default::default())?;
            for l in &loaded {
                println!("Loaded image ID: {}", l.id);
            }
            if let (Some(name), Some(l)) = (args.get(2), loaded.first()) {
                store.tag(&l.id.to_string(), &Reference::parse_tagged(name)?)?;
            }
            Ok(())
        })();
        return match r {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                print_chain(e.as_ref());
                ExitCode::FAILURE
            }
        };
    }
    let Some(name) = args.get(1) else {
        return usage();
    };
    let reference = match Reference::parse_tagged(name) {
        Ok(r) => r,
        Err(e) => {
            print_chain(&e);
            return ExitCode::from(2);
        }
    };
    let auth = CredentialStore::default_location()
        .and_then(|cs| cs.get(reference.domain()).ok().flatten());
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    let result = rt.block_on(async {
        let render = tokio::spawn(async move {
            let mut r = Renderer::stdout();
            while let Some(e) = rx.recv().await {
                if !quiet {
                    let _ = r.event(&e);
                }
            }
        });
        let res = match cmd.as_str() {
            "pull" => client
                .pull(store.clone(), &reference, platform, auth, tx)
                .await
                .map(|_| ()),
            "push" => {
                let opts = PushOptions {
                    compression: zstd.then_some(Compression::Zstd),
                };
                client
                    .push_with(store.clone(), &reference, &opts, auth, tx)
                    .await
                    .map(|_| ())
            }
            _ => {
                drop(tx);
                let _ = render.await;
                return Err(None);
            }
        };
        let _ = render.await;
        res.map_err(Some)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(None) => usage(),
        Err(Some(e)) => {
            print_chain(&e);
            ExitCode::FAILURE
        }
    }
}
