//! `grpc.health.v1.Health`: dfdaemon checks service `""` on every scheduler address and only
//! uses those answering SERVING. hawker answers SERVING for `""` and for the services it hosts
//! on that listener, NOT_FOUND for any other name (the gRPC health protocol's rule). `Watch`
//! sends the status once and keeps the stream open until the client leaves.

use crate::proto::health::v1::health_check_response::ServingStatus;
use crate::proto::health::v1::health_server::Health;
use crate::proto::health::v1::{HealthCheckRequest, HealthCheckResponse};
use std::pin::Pin;
use tonic::{Request, Response, Status};

/// Health of one listener: the names of the services it serves.
#[derive(Debug, Clone)]
pub struct HealthService {
    services: &'static [&'static str],
}

impl HealthService {
    /// Answers SERVING for `""` and each of `services` (full names, e.g. `scheduler.v2.Scheduler`).
    pub fn new(services: &'static [&'static str]) -> HealthService {
        HealthService { services }
    }

    fn status_of(&self, service: &str) -> Result<HealthCheckResponse, Status> {
        if service.is_empty() || self.services.contains(&service) {
            Ok(HealthCheckResponse {
                status: ServingStatus::Serving as i32,
            })
        } else {
            Err(Status::not_found(format!("unknown service {service:?}")))
        }
    }
}

type WatchStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Health for HealthService {
    type WatchStream = WatchStream;

    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        self.status_of(&request.get_ref().service)
            .map(Response::new)
    }

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let first = match self.status_of(&request.get_ref().service) {
            Ok(r) => r,
            Err(_) => HealthCheckResponse {
                status: ServingStatus::ServiceUnknown as i32,
            },
        };
        use tokio_stream::StreamExt;
        let stream = tokio_stream::once(Ok(first)).chain(tokio_stream::pending());
        Ok(Response::new(Box::pin(stream)))
    }
}
