//! Incidents, prices, statistics and reports.
