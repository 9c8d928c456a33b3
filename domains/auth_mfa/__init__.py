"""Auth MFA: TOTP secrets (encrypted at rest) and hashed recovery codes. Publishes
MFA_ENABLED, MFA_DISABLED, RECOVERY_CODE_USED."""
