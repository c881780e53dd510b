//! Which parts of each instruction Docker expands, and with which rule: ADD and COPY
//! (sources, destination, --from, --chown, --chmod, --checksum; not --exclude), ENV and LABEL
//! (names and values), EXPOSE (split into fields), FROM (image, --platform), STOPSIGNAL, USER,
//! VOLUME, WORKDIR, ARG (names and defaults), RUN's --mount values, --network and --security.
//! CMD, ENTRYPOINT, SHELL, HEALTHCHECK, ONBUILD, MAINTAINER and commands are left as written.

use super::{ExpandError, Lookup, expand_word, expand_words};
use crate::parser::heredoc::parse_marker;
use crate::parser::{CopyArgs, Instruction, Run, RunMount, check_network, check_security};

struct Expander<'a> {
    escape: char,
    env: &'a dyn Lookup,
}

impl Expander<'_> {
    fn word(&self, word: &str) -> Result<String, ExpandError> {
        expand_word(word, self.escape, self.env)
    }

    fn opt(&self, word: &Option<String>) -> Result<Option<String>, ExpandError> {
        word.as_deref().map(|w| self.word(w)).transpose()
    }

    fn all(&self, words: &[String]) -> Result<Vec<String>, ExpandError> {
        words.iter().map(|w| self.word(w)).collect()
    }

    fn pairs(&self, pairs: &[(String, String)]) -> Result<Vec<(String, String)>, ExpandError> {
        pairs
            .iter()
            .map(|(k, v)| Ok((self.word(k)?, self.word(v)?)))
            .collect()
    }

    fn copy(&self, c: &CopyArgs) -> Result<CopyArgs, ExpandError> {
        let sources = c
            .sources
            .iter()
            .map(|s| {
                if parse_marker(s).is_some() {
                    Ok(s.clone())
                } else {
                    self.word(s)
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(CopyArgs {
            sources,
            dest: self.word(&c.dest)?,
            from: self.opt(&c.from)?,
            chown: self.opt(&c.chown)?,
            chmod: self.opt(&c.chmod)?,
            checksum: self.opt(&c.checksum)?,
            ..c.clone()
        })
    }

    fn mount(&self, m: &RunMount) -> Result<RunMount, ExpandError> {
        Ok(RunMount {
            target: self.opt(&m.target)?,
            source: self.opt(&m.source)?,
            from: self.opt(&m.from)?,
            id: self.opt(&m.id)?,
            env: self.opt(&m.env)?,
            ..m.clone()
        })
    }

    fn run(&self, r: &Run) -> Result<Run, ExpandError> {
        let network = self.opt(&r.network)?;
        if let Some(n) = &network {
            check_network(n).map_err(ExpandError::Network)?;
        }
        let security = self.opt(&r.security)?;
        if let Some(s) = &security {
            check_security(s).map_err(ExpandError::Security)?;
        }
        let mounts = r
            .mounts
            .iter()
            .map(|m| self.mount(m))
            .collect::<Result<_, _>>()?;
        Ok(Run {
            mounts,
            network,
            security,
            ..r.clone()
        })
    }
}

impl Instruction {
    /// The instruction with what Docker expands expanded (and unquoted) against `env`.
    /// EXPOSE words are split into fields (`EXPOSE $PORTS` may give several ports).
    pub fn expand(&self, escape: char, env: &dyn Lookup) -> Result<Instruction, ExpandError> {
        let x = Expander { escape, env };
        Ok(match self {
            Instruction::From {
                image,
                name,
                platform,
            } => Instruction::From {
                image: x.word(image)?,
                name: name.clone(),
                platform: x.opt(platform)?,
            },
            Instruction::Run(r) => Instruction::Run(x.run(r)?),
            Instruction::Label(pairs) => Instruction::Label(x.pairs(pairs)?),
            Instruction::Env(pairs) => Instruction::Env(x.pairs(pairs)?),
            Instruction::Expose(ports) => {
                let mut out = Vec::new();
                for port in ports {
                    out.extend(expand_words(port, escape, env)?);
                }
                Instruction::Expose(out)
            }
            Instruction::Add(c) => Instruction::Add(x.copy(c)?),
            Instruction::Copy(c) => Instruction::Copy(x.copy(c)?),
            Instruction::Volume(v) => Instruction::Volume(x.all(v)?),
            Instruction::User(u) => Instruction::User(x.word(u)?),
            Instruction::Workdir(w) => Instruction::Workdir(x.word(w)?),
            Instruction::Stopsignal(s) => Instruction::Stopsignal(x.word(s)?),
            Instruction::Arg(pairs) => Instruction::Arg(
                pairs
                    .iter()
                    .map(|(k, v)| Ok((x.word(k)?, x.opt(v)?)))
                    .collect::<Result<_, ExpandError>>()?,
            ),
            Instruction::Cmd(_)
            | Instruction::Entrypoint(_)
            | Instruction::Maintainer(_)
            | Instruction::Onbuild(_)
            | Instruction::Healthcheck(_)
            | Instruction::Shell(_) => self.clone(),
        })
    }
}
