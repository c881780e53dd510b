//! The stage graph: what a FROM or `--from` word refers to, the target stage, and the stages
//! a target needs, dependencies first.

use std::collections::BTreeMap;

use thiserror::Error;

use crate::args::{global_scope, is_platform_arg};
use crate::expand::{ExpandError, Lookup, expand_word};
use crate::parser::{Dockerfile, Instruction, Stage};

#[cfg(test)]
mod tests;

/// A stage-graph failure.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StageError {
    #[error("target stage {0:?} could not be found")]
    NotFound(String),
    #[error("dockerfile contains no stages to build")]
    NoStages,
    #[error("stage {0} does not exist")]
    NoSuchStage(usize),
    #[error("invalid stage index {0}")]
    InvalidIndex(usize),
    #[error(
        "cannot copy from stage {from:?}, it needs to be defined before current stage {stage:?}"
    )]
    CopyFromLater { from: String, stage: String },
    #[error(
        "cannot mount from stage {from:?} to {target:?}, stage needs to be defined before current command"
    )]
    MountFromLater { from: String, target: String },
    #[error("stage {stage}")]
    Expand {
        stage: usize,
        #[source]
        source: ExpandError,
    },
}

/// What a stage is built on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseRef {
    /// An earlier stage, by index.
    Stage(usize),
    /// An image reference.
    Image(String),
    /// `scratch`: nothing.
    Scratch,
}

/// An earlier stage (index below `before`) named `name` (case-insensitive) or numbered so.
pub fn stage_ref(df: &Dockerfile, before: usize, name: &str) -> Option<usize> {
    let earlier = df
        .stages
        .get(..before.min(df.stages.len()))
        .unwrap_or_default();
    if let Ok(index) = name.parse::<usize>() {
        return earlier.get(index).map(|s| s.index);
    }
    let lower = name.to_lowercase();
    earlier
        .iter()
        .find(|s| s.name.as_deref() == Some(lower.as_str()))
        .map(|s| s.index)
}

/// What stage `stage` is built on, given its FROM word expanded.
pub fn resolve_base(df: &Dockerfile, stage: usize, expanded_base: &str) -> BaseRef {
    match stage_ref(df, stage, expanded_base) {
        Some(index) => BaseRef::Stage(index),
        None if expanded_base == "scratch" => BaseRef::Scratch,
        None => BaseRef::Image(expanded_base.to_string()),
    }
}

/// The stage to build: the one named `target`, or the last.
pub fn target_index(df: &Dockerfile, target: Option<&str>) -> Result<usize, StageError> {
    match target {
        None => df.stages.len().checked_sub(1).ok_or(StageError::NoStages),
        Some(name) => {
            let lower = name.to_lowercase();
            df.stages
                .iter()
                .find(|s| s.name.as_deref() == Some(lower.as_str()))
                .map(|s| s.index)
                .ok_or_else(|| StageError::NotFound(name.to_string()))
        }
    }
}

/// A word of a stage that may name another stage.
enum Reference<'a> {
    Base(&'a str),
    CopyFrom(&'a str),
    MountFrom { from: &'a str, target: &'a str },
}

/// The words of a stage that may name other stages: its FROM image, COPY --from and
/// RUN --mount from=.
fn references(stage: &Stage) -> Vec<Reference<'_>> {
    let mut words = vec![Reference::Base(stage.base.as_str())];
    for item in &stage.instructions {
        match &item.inner {
            Instruction::Copy(c) => words.extend(c.from.as_deref().map(Reference::CopyFrom)),
            Instruction::Run(r) => words.extend(r.mounts.iter().filter_map(|m| {
                let target = m.target.as_deref().unwrap_or_default();
                m.from
                    .as_deref()
                    .map(|from| Reference::MountFrom { from, target })
            })),
            _ => {}
        }
    }
    words
}

/// The stage a `--from` word names, anywhere in the file (by index or name, as BuildKit
/// looks it up); an error for an index out of range.
fn from_stage(df: &Dockerfile, word: &str) -> Result<Option<usize>, StageError> {
    if let Ok(index) = word.parse::<usize>() {
        return match df.stages.get(index) {
            Some(s) => Ok(Some(s.index)),
            None => Err(StageError::InvalidIndex(index)),
        };
    }
    let lower = word.to_lowercase();
    Ok(df
        .stages
        .iter()
        .find(|s| s.name.as_deref() == Some(lower.as_str()))
        .map(|s| s.index))
}

/// A stage's name for messages: its AS name or `stage-N`.
fn display_name(stage: &Stage) -> String {
    stage
        .name
        .clone()
        .unwrap_or_else(|| format!("stage-{}", stage.index))
}

/// The earlier stages `stage` uses directly; a `--from` naming this or a later stage is an
/// error, as in BuildKit.
fn direct_deps(
    df: &Dockerfile,
    stage: &Stage,
    scope: &dyn Lookup,
) -> Result<Vec<usize>, StageError> {
    let expand = |word: &str| {
        expand_word(word, df.escape, scope).map_err(|source| StageError::Expand {
            stage: stage.index,
            source,
        })
    };
    let mut deps = Vec::new();
    for reference in references(stage) {
        let found = match reference {
            Reference::Base(word) => stage_ref(df, stage.index, &expand(word)?),
            Reference::CopyFrom(word) => {
                let from = expand(word)?;
                let found = from_stage(df, &from)?;
                if found.is_some_and(|i| i >= stage.index) {
                    return Err(StageError::CopyFromLater {
                        from,
                        stage: display_name(stage),
                    });
                }
                found
            }
            Reference::MountFrom { from, target } => {
                let from = expand(from)?;
                let found = from_stage(df, &from)?;
                if found.is_some_and(|i| i >= stage.index) {
                    return Err(StageError::MountFromLater {
                        from,
                        target: target.to_string(),
                    });
                }
                found
            }
        };
        deps.extend(found);
    }
    Ok(deps)
}

/// The stages `target` depends on and `target` itself, dependencies before the stages that
/// use them (in file order, which is a topological order since references go backwards).
/// FROM and `--from` words are expanded with the global ARGs, whose defaults `global_args`
/// (the build args, and the platform ARGs if wanted) overrides.
pub fn needed_stages(
    df: &Dockerfile,
    target: usize,
    global_args: &dyn Lookup,
) -> Result<Vec<usize>, StageError> {
    Ok(stage_graph(df, target, global_args)?.into_keys().collect())
}

/// The stages `target` needs (itself included), each with the earlier stages it uses
/// directly (its FROM, `COPY --from`, `RUN --mount from=`): what may build in parallel is
/// what does not depend on each other. Words are expanded as for [`needed_stages`].
pub fn stage_graph(
    df: &Dockerfile,
    target: usize,
    global_args: &dyn Lookup,
) -> Result<BTreeMap<usize, Vec<usize>>, StageError> {
    if target >= df.stages.len() {
        return Err(StageError::NoSuchStage(target));
    }
    let scope = global_scope(df, global_args, &[]).map_err(|source| StageError::Expand {
        stage: target,
        source,
    })?;
    let lookup = |name: &str| match scope.get(name) {
        Some(v) => Some(v.clone()),
        None if is_platform_arg(name) => global_args.get(name),
        None => None,
    };
    let mut graph = BTreeMap::new();
    let mut pending = vec![target];
    while let Some(index) = pending.pop() {
        if graph.contains_key(&index) {
            continue;
        }
        let Some(stage) = df.stages.get(index) else {
            continue;
        };
        let mut deps = direct_deps(df, stage, &lookup)?;
        deps.sort_unstable();
        deps.dedup();
        pending.extend(deps.iter().copied());
        graph.insert(index, deps);
    }
    Ok(graph)
}
