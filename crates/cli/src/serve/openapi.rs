//! The OpenAPI 3.1 description, generated from the handlers and the types they answer with;
//! every operation gets the problem responses and the key schemes the server applies to all.

use super::problem::{Problem, PROBLEM_JSON};
use super::routes;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tracehound",
        description = "Crypto-crime intelligence over the chains stored in one tracehound data directory: addresses, entities, transactions, screening, taint tracing, incidents, statistics and labels. Every route but /health needs an API key (`tracehound keys create`). Amounts are base units (satoshi, wei) as decimal strings. Errors are RFC 9457 problem documents."
    ),
    paths(
        routes::health,
        routes::metrics,
        routes::openapi,
        routes::address,
        routes::address_transactions,
        routes::cluster,
        routes::transaction,
        routes::screen_one,
        routes::screen_bulk,
        routes::trace,
        routes::incidents,
        routes::incident,
        routes::actor,
        routes::stats,
        routes::search,
        routes::add_tag,
        routes::audit,
        routes::keys,
    ),
    components(schemas(Problem)),
    modifiers(&Conventions),
    tags(
        (name = "chains", description = "Addresses, entities and transactions of a stored chain"),
        (name = "screening", description = "Risk and exposure of addresses, outputs, transactions and transfers"),
        (name = "tracing", description = "Taint tracing with an exact accounting of the seed amount"),
        (name = "incidents", description = "The incident registry and its statistics"),
        (name = "labels", description = "Tags and actors of the label store"),
        (name = "admin", description = "The audit log and the API keys (admin keys)"),
        (name = "server", description = "Health, metrics and this description"),
    )
)]
struct ApiDoc;

/// What the server does to every operation: key schemes, and the problems any route can answer.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.security_schemes.insert(
            "ApiKey".into(),
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description("X-API-Key", "A key made by `tracehound keys create`"))),
        );
        components.security_schemes.insert("Bearer".into(), SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        api.security = Some(vec![SecurityRequirement::new("ApiKey", Vec::<String>::new()), SecurityRequirement::new("Bearer", Vec::<String>::new())]);
        for (path, item) in api.paths.paths.iter_mut() {
            let public = path == "/health";
            for op in [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch].into_iter().flatten() {
                let mut errors =
                    vec![("400", "Malformed input"), ("404", "Not found"), ("500", "Internal error"), ("503", "Busy, or over the server's timeout")];
                if !public {
                    errors.extend([
                        ("401", "No key, or an unknown or revoked one"),
                        ("403", "The key's role does not allow this"),
                        ("429", "Rate limit reached"),
                    ]);
                }
                if op.request_body.is_some() {
                    errors.push(("413", "Request body or item count over the limit"));
                }
                for (code, why) in errors {
                    op.responses.responses.entry(code.into()).or_insert_with(|| {
                        let content = ContentBuilder::new().schema(Some(RefOr::Ref(Ref::from_schema_name("Problem")))).build();
                        RefOr::T(ResponseBuilder::new().description(why).content(PROBLEM_JSON, content).build())
                    });
                }
            }
        }
    }
}

/// The OpenAPI document as JSON (made once).
pub fn document() -> &'static str {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_pretty_json().expect("the OpenAPI document serializes"))
}
