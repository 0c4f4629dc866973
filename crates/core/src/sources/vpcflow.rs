use super::{Context, Emit};
use crate::error::{Error, Location, Result};
use std::io::BufRead;

pub fn looks_like_header(line: &str) -> bool {
    line.starts_with("version ")
}

pub fn normalize(_input: &mut dyn BufRead, ctx: &Context, _out: &mut dyn Emit) -> Result<()> {
    Err(Error::Format {
        at: Location::object(ctx.object.clone()),
        reason: "VPC flow parsing is not implemented yet".into(),
    })
}
