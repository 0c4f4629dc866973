use super::{Context, Emit};
use crate::error::{Error, Location, Result};
use std::io::BufRead;

pub fn normalize(_input: &mut dyn BufRead, ctx: &Context, _out: &mut dyn Emit) -> Result<()> {
    Err(Error::Format {
        at: Location::object(ctx.object.clone()),
        reason: "CloudTrail parsing is not implemented yet".into(),
    })
}
