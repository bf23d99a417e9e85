//! Generates the tonic service plumbing (server traits and clients) for the three gRPC
//! services hawker speaks, WITHOUT protoc: the message types are hand-written prost derive
//! structs in `src/proto/`, and `tonic_build::manual` only emits the routing code that
//! refers to them by path. Only the methods hawker implements are listed; a call to any
//! other method of these services is answered `UNIMPLEMENTED` by tonic's router, which the
//! Dragonfly client 1.5.10 tolerates (it logs and goes on).
//!
//! Output: `$OUT_DIR/<package>.<Service>.rs`, included by `src/proto/mod.rs`.

use tonic_build::manual::{Builder, Method, Service};

const CODEC: &str = "tonic_prost::ProstCodec";

/// One method: (rust name, route name, input type, output type, client streaming, server streaming).
type MethodSpec = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    bool,
);

fn service(package: &str, name: &str, methods: &[MethodSpec]) -> Service {
    let mut builder = Service::builder().name(name).package(package);
    for &(rust_name, route, input, output, client_streaming, server_streaming) in methods {
        let mut method = Method::builder()
            .name(rust_name)
            .route_name(route)
            .input_type(input)
            .output_type(output)
            .codec_path(CODEC);
        if client_streaming {
            method = method.client_streaming();
        }
        if server_streaming {
            method = method.server_streaming();
        }
        builder = builder.method(method.build());
    }
    builder.build()
}

fn main() {
    const S: &str = "crate::proto::scheduler::v2";
    const C: &str = "crate::proto::common::v2";
    const D: &str = "crate::proto::dfdaemon::v2";
    const H: &str = "crate::proto::health::v1";
    let s = |t: &str| format!("{S}::{t}");
    let c = |t: &str| format!("{C}::{t}");
    let d = |t: &str| format!("{D}::{t}");
    let h = |t: &str| format!("{H}::{t}");
    // Leak the formatted paths: build scripts are short-lived and this keeps MethodSpec simple.
    let l = |x: String| -> &'static str { Box::leak(x.into_boxed_str()) };

    let scheduler = service(
        "scheduler.v2",
        "Scheduler",
        &[
            (
                "announce_peer",
                "AnnouncePeer",
                l(s("AnnouncePeerRequest")),
                l(s("AnnouncePeerResponse")),
                true,
                true,
            ),
            (
                "stat_peer",
                "StatPeer",
                l(s("StatPeerRequest")),
                l(c("Peer")),
                false,
                false,
            ),
            (
                "delete_peer",
                "DeletePeer",
                l(s("DeletePeerRequest")),
                "crate::proto::Empty",
                false,
                false,
            ),
            (
                "stat_task",
                "StatTask",
                l(s("StatTaskRequest")),
                l(c("Task")),
                false,
                false,
            ),
            (
                "delete_task",
                "DeleteTask",
                l(s("DeleteTaskRequest")),
                "crate::proto::Empty",
                false,
                false,
            ),
            (
                "announce_host",
                "AnnounceHost",
                l(s("AnnounceHostRequest")),
                "crate::proto::Empty",
                false,
                false,
            ),
            (
                "list_hosts",
                "ListHosts",
                l(s("ListHostsRequest")),
                l(s("ListHostsResponse")),
                false,
                false,
            ),
            (
                "delete_host",
                "DeleteHost",
                l(s("DeleteHostRequest")),
                "crate::proto::Empty",
                false,
                false,
            ),
        ],
    );
    let upload = service(
        "dfdaemon.v2",
        "DfdaemonUpload",
        &[
            (
                "sync_pieces",
                "SyncPieces",
                l(d("SyncPiecesRequest")),
                l(d("SyncPiecesResponse")),
                false,
                true,
            ),
            (
                "download_task",
                "DownloadTask",
                l(d("DownloadTaskRequest")),
                l(d("DownloadTaskResponse")),
                false,
                true,
            ),
            (
                "sync_host",
                "SyncHost",
                l(d("SyncHostRequest")),
                l(c("Host")),
                false,
                true,
            ),
        ],
    );
    let health = service(
        "grpc.health.v1",
        "Health",
        &[
            (
                "check",
                "Check",
                l(h("HealthCheckRequest")),
                l(h("HealthCheckResponse")),
                false,
                false,
            ),
            (
                "watch",
                "Watch",
                l(h("HealthCheckRequest")),
                l(h("HealthCheckResponse")),
                false,
                true,
            ),
        ],
    );
    Builder::new().compile(&[scheduler, upload, health]);
    println!("cargo:rerun-if-changed=build.rs");
}
