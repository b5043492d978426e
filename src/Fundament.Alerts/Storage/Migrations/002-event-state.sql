-- The last state an alert announced as a domain event (alert.firing, alert.resolved), kept apart
-- from notified_state (its channels): a bus that is away must not hold back e-mail or Slack, and a
-- channel that fails must not repeat the event. Alerts from before count as announced.
ALTER TABLE alerts ADD COLUMN event_state TEXT NULL;
UPDATE alerts SET event_state = notified_state;
