//! Parses arbitrary text as a Dockerfile, then expands every instruction and walks the stage
//! graph; none of it may panic. The raw text also goes through the word expander with
//! variables set, so the `${v#p}` pattern code sees non-empty values.

#![no_main]

use libfuzzer_sys::fuzz_target;

use berth_build::{NoVars, expand, parse, stages};

fn lookup(name: &str) -> Option<String> {
    match name.len() % 3 {
        0 => None,
        1 => Some(String::new()),
        _ => Some(format!("{name}/a.b*c?d {name}")),
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for escape in ['\\', '`'] {
        let _ = expand::expand_word(&text, escape, &lookup);
        let _ = expand::expand_words(&text, escape, &lookup);
        let _ = expand::expand_heredoc(&text, escape, &lookup);
    }
    let Ok(df) = parse(&text) else { return };
    let all = df
        .global_args
        .iter()
        .chain(df.stages.iter().flat_map(|s| s.instructions.iter()));
    for item in all {
        let _ = item.inner.expand(df.escape, &NoVars);
        let _ = item.inner.expand(df.escape, &lookup);
        if let berth_build::Instruction::Copy(c) | berth_build::Instruction::Add(c) = &item.inner {
            for source in &c.sources {
                let _ = c.heredoc_for(source);
            }
        }
    }
    for stage in &df.stages {
        let _ = stages::resolve_base(&df, stage.index, &stage.base);
        let _ = stages::stage_ref(&df, stage.index, &stage.base);
        let _ = stages::needed_stages(&df, stage.index, &NoVars);
        let _ = stages::needed_stages(&df, stage.index, &lookup);
        if let Some(name) = &stage.name {
            let _ = stages::target_index(&df, Some(name));
        }
    }
    let _ = stages::target_index(&df, None);
    let _ = berth_build::global_scope(&df, &lookup, &[]);
});
