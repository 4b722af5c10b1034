"""One module per rule file: each stage takes one typed, keyword-only request and writes its
artifacts plus one metrics record (docs/architecture.md). Workflow scripts build the request
from the rule with :func:`~msdefense.stages.context.run_rule`."""
