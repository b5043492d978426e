-- pulls look for a subscription's deliveries that are due (or count those that are not) without
-- walking every delivery it has, parked ones included
CREATE INDEX events_deliveries_visible ON events_deliveries (subscription, state, visible_at);
