"""mailbridge: Google Workspace mailboxes as a helpdesk ticket stream."""
