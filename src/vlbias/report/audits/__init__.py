"""How the report presents the packaged audits: one module per audit, named by its ``AuditSpec.presentation`` (the
contract is in :mod:`vlbias.report.presentation`)."""
