//! S3 notification rules: which records of a trigger to take, and key decoding.
//! (Filled in by the trigger work; see the issue.)
