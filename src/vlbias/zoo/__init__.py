"""The model zoo: sweeps of audits over many models (plan, run, store), their analysis and downstream accuracy."""
