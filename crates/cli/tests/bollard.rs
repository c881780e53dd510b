//! A Rust Docker API client (bollard, as real programs use it) against berth's daemon:
//! version negotiation, images, the create/start/wait/logs/remove round trip, errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListImagesOptions, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, WaitContainerOptions,
};
use futures_util::StreamExt;

use common::*;

/// Runs `test` with a bollard client on a berth daemon of its own (none without root).
fn with_docker<F: std::future::Future<Output = ()>>(test: impl FnOnce(Docker) -> F) {
    let Some(d) = start_berth() else { return };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let docker =
        Docker::connect_with_unix(d.socket.to_str().unwrap(), 60, bollard::API_DEFAULT_VERSION)
            .unwrap();
    rt.block_on(test(docker));
}

/// Creates a busybox container named `name` running `cmd` without a network, and starts it;
/// returns its id.
async fn run_busybox(docker: &Docker, name: &str, cmd: &str) -> String {
    let body = ContainerCreateBody {
        image: Some("busybox".into()),
        cmd: Some(vec!["sh".into(), "-c".into(), cmd.into()]),
        host_config: Some(bollard::models::HostConfig {
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = docker
        .create_container(
            Some(CreateContainerOptionsBuilder::default().name(name).build()),
            body,
        )
        .await
        .unwrap();
    docker
        .start_container(
            &created.id,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .unwrap();
    created.id
}

#[test]
fn bollard_drives_berth() {
    with_docker(|docker| async move {
        let docker = docker.negotiate_version().await.unwrap();
        let version = docker.version().await.unwrap();
        assert_eq!(version.api_version.as_deref(), Some("1.45"));
        let images = docker.list_images(None::<ListImagesOptions>).await.unwrap();
        assert!(
            images
                .iter()
                .any(|i| i.repo_tags.iter().any(|t| t == "busybox:latest"))
        );

        let name = unique_name("bl");
        let id = run_busybox(&docker, &name, "echo from-bollard; exit 6").await;
        // wait reports a non-zero exit as an error carrying the code.
        let waited: Vec<_> = docker
            .wait_container(&id, None::<WaitContainerOptions>)
            .collect()
            .await;
        let code = match &waited[0] {
            Ok(r) => r.status_code,
            Err(bollard::errors::Error::DockerContainerWaitError { code, .. }) => *code,
            Err(e) => panic!("wait: {e}"),
        };
        assert_eq!(code, 6);
        let logs: Vec<_> = docker
            .logs(
                &id,
                Some(
                    LogsOptionsBuilder::default()
                        .stdout(true)
                        .stderr(true)
                        .build(),
                ),
            )
            .collect()
            .await;
        let text: String = logs.into_iter().map(|l| l.unwrap().to_string()).collect();
        assert_eq!(text, "from-bollard\n");
        let info = docker
            .inspect_container(
                &name,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .unwrap();
        assert_eq!(info.state.unwrap().exit_code, Some(6));
        docker
            .remove_container(
                &name,
                Some(RemoveContainerOptionsBuilder::default().force(true).build()),
            )
            .await
            .unwrap();
        match docker
            .inspect_container(
                &name,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
        {
            Err(bollard::errors::Error::DockerResponseServerError { status_code, .. }) => {
                assert_eq!(status_code, 404)
            }
            other => panic!("inspect of a removed container: {other:?}"),
        }
    });
}

/// `GET /containers/ID/stats?stream=true` as a client reads it: one sample a second, each
/// carrying the previous one as `precpu_stats`, CPU time growing while the container spins.
#[test]
fn bollard_streams_stats() {
    with_docker(|docker| async move {
        let name = unique_name("bs");
        run_busybox(&docker, &name, "while :; do :; done").await;
        let samples: Vec<_> = docker
            .stats(
                &name,
                Some(
                    bollard::query_parameters::StatsOptionsBuilder::default()
                        .stream(true)
                        .build(),
                ),
            )
            .take(3)
            .collect()
            .await;
        let samples: Vec<_> = samples.into_iter().map(|s| s.unwrap()).collect();
        assert_eq!(samples.len(), 3);
        let total = |c: &Option<bollard::models::ContainerCpuStats>| {
            c.as_ref()
                .and_then(|c| c.cpu_usage.as_ref())
                .and_then(|u| u.total_usage)
                .unwrap_or(0)
        };
        for pair in samples.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            assert_ne!(a.read, b.read, "each sample has its own time");
            assert_eq!(
                total(&b.precpu_stats),
                total(&a.cpu_stats),
                "precpu_stats is the previous sample"
            );
            assert!(
                total(&b.cpu_stats) > total(&a.cpu_stats),
                "a spinning container's CPU time grows: {} then {}",
                total(&a.cpu_stats),
                total(&b.cpu_stats)
            );
        }
        let last = samples.last().unwrap();
        assert!(
            last.pids_stats
                .as_ref()
                .and_then(|p| p.current)
                .unwrap_or(0)
                >= 1,
            "{:?}",
            last.pids_stats
        );
        assert!(
            last.memory_stats
                .as_ref()
                .and_then(|m| m.usage)
                .unwrap_or(0)
                > 0,
            "{:?}",
            last.memory_stats
        );
        docker
            .remove_container(
                &name,
                Some(RemoveContainerOptionsBuilder::default().force(true).build()),
            )
            .await
            .unwrap();
    });
}
