"""The quarterly rollback drill (ROLLBACK_PROCEDURE.md, "Testing Rollback Procedure")."""
