//! The stage graph: what a FROM or `--from` word refers to, the target stage, and the stages
//! a target needs, dependencies first.

use std::collections::BTreeSet;

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

/// The words of a stage that may name other stages: its FROM image, COPY --from and
/// RUN --mount from=.
fn references(stage: &Stage) -> Vec<&str> {
    let mut words = vec![stage.base.as_str()];
    for item in &stage.instructions {
        match &item.inner {
            Instruction::Copy(c) => words.extend(c.from.as_deref()),
            Instruction::Run(r) => words.extend(r.mounts.iter().filter_map(|m| m.from.as_deref())),
            _ => {}
        }
    }
    words
}

/// The earlier stages `stage` uses directly.
fn direct_deps(
    df: &Dockerfile,
    stage: &Stage,
    scope: &dyn Lookup,
) -> Result<Vec<usize>, StageError> {
    let mut deps = Vec::new();
    for word in references(stage) {
        let expanded =
            expand_word(word, df.escape, scope).map_err(|source| StageError::Expand {
                stage: stage.index,
                source,
            })?;
        if let Some(dep) = stage_ref(df, stage.index, &expanded) {
            deps.push(dep);
        }
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
    let mut needed = BTreeSet::from([target]);
    let mut pending = vec![target];
    while let Some(index) = pending.pop() {
        let Some(stage) = df.stages.get(index) else {
            continue;
        };
        for dep in direct_deps(df, stage, &lookup)? {
            if needed.insert(dep) {
                pending.push(dep);
            }
        }
    }
    Ok(needed.into_iter().collect())
}
