//! The catalogue every test registry starts with (shared by `support` and `console_support`).
#![allow(dead_code)]

/// Every scope the test suites grant, catalogued `low` (granted at once when asked for) under a
/// resource named after its prefix. Tests of tiers and approvals import their own resources.
pub const TEST_SCOPES: &[&str] = &[
    "a:b",
    "calendar:read",
    "crm.orders:read",
    "crm.orders:write",
    "crm:read",
    "crm:write",
    "erp.invoices:read",
    "erp.ledger:write",
    "erp:read",
    "erp:write",
    "github.repo:write",
    "hr.people:read",
    "hr:read",
    "index:write",
    "jira.issues:write",
    "jira.p2:read",
    "jira.p5:read",
    "jira.p8:read",
    "jira.x:read",
    "mail:send",
    "payments:refund",
    "payments:write",
    "s3.finance-reports/2026:write",
    "s3.raw:read",
    "s3.reports:read",
    "s3.reports:write",
    "s3:write",
    "search.index:write",
    "slack.chat:write",
    "tasks:read",
    "tasks:run",
    "tickets:write",
    "web:read",
    "wiki:read",
    "x:read",
];

/// The resource a scope belongs to in [`test_catalogue`]: its prefix (`crm.orders:read` → `crm`).
pub fn scope_prefix(scope: &str) -> &str {
    scope.split(['.', ':']).next().unwrap_or(scope)
}

/// [`TEST_SCOPES`] as a catalogue: one unowned resource per prefix, audiences
/// `https://PREFIX.example.com` and `https://PREFIX.example.com/api`, every scope `low`.
pub fn test_catalogue() -> steward::model::catalogue::ImportCatalogue {
    use steward::model::catalogue::{ApprovalMode, CatalogueScope, Resource, Tier};
    let mut resources: Vec<Resource> = Vec::new();
    for scope in TEST_SCOPES {
        let id = scope_prefix(scope);
        if !resources.iter().any(|r| r.id == id) {
            resources.push(Resource {
                id: id.to_string(),
                name: id.to_string(),
                description: String::new(),
                owner: None,
                audiences: vec![
                    format!("https://{id}.example.com"),
                    format!("https://{id}.example.com/api"),
                ],
                approvers: None,
                max_duration: None,
                scopes: Vec::new(),
            });
        }
        let resource = resources
            .iter_mut()
            .find(|r| r.id == id)
            .expect("added above");
        resource.scopes.push(CatalogueScope {
            name: scope.to_string(),
            tier: Tier::Low,
            approval: ApprovalMode::Request,
            description: String::new(),
        });
    }
    steward::model::catalogue::ImportCatalogue { resources }
}
