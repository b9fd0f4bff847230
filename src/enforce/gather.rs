//! Gathering an account's facts for the planner.
