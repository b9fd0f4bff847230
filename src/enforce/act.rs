//! Carrying out one key action.
