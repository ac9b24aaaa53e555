"""Statistics: functions of arrays and frames that know nothing of models, encoders, audits or files."""
