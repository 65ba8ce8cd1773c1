//! The API contract: the OpenAPI 3.1 document is generated from the
//! handlers' `#[utoipa::path]` annotations and the types they take and
//! return (see [`crate::api`]), never kept by hand. What every operation has
//! in common is added here once: the bearer security scheme and the problem
//! details responses of the error layer (`crate::error`).

use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};

use crate::error::{Problem, PROBLEM_JSON};

/// The document's frame: title, version, security scheme, shared schemas.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "twokey API",
        version = "1",
        description = "Two-person integrity: requests, reviews, grants, policy and ledger. Every error is an RFC 9457 problem (application/problem+json)."
    ),
    security(("bearer" = [])),
    components(schemas(Problem)),
    modifiers(&BearerScheme)
)]
pub struct ApiDoc;

struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Adds the error responses every operation can give, as the error layer
/// answers them, to each operation that does not document that status
/// itself: 400 (a parameter or body that does not parse), 401 (operations
/// that need a token), 413 and 415 (operations with a body), 500 and 503.
pub fn finish(doc: &mut OpenApi) {
    for item in doc.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
            &mut item.trace,
        ];
        for op in ops.into_iter().flatten() {
            add_problem_responses(op);
        }
    }
}

fn add_problem_responses(op: &mut Operation) {
    // `security(())` on an operation (the health checks) means "no token".
    let secured = match &op.security {
        None => true,
        Some(reqs) => !reqs.iter().all(is_empty_requirement),
    };
    let has_body = op.request_body.is_some();
    let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let mut add = |status: &str, description: &str| {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::T(problem_response(description)));
    };
    if has_body || has_params {
        add(
            "400",
            "A parameter or the body does not parse or has the wrong type",
        );
    }
    if secured {
        add("401", "Missing, malformed, unknown or expired bearer token");
    }
    if has_body {
        add("413", "The body is larger than the API takes (1 MiB)");
        add("415", "The body is not JSON (Content-Type)");
    }
    add(
        "500",
        "Internal error: the detail carries a correlation id found in the server's log",
    );
    if secured {
        add(
            "503",
            "The store is unavailable: nothing was changed (fail closed)",
        );
    }
}

fn is_empty_requirement(r: &utoipa::openapi::security::SecurityRequirement) -> bool {
    serde_json::to_value(r).is_ok_and(|v| v.as_object().is_some_and(|m| m.is_empty()))
}

fn problem_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}
