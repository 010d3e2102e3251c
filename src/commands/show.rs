//! `show IMAGE`: `GET /v2/images/{id}` (or the lookup by name, which already
//! returns the whole image).

use std::io::Write;

use super::{resolve, Context};
use crate::cli::ShowArgs;
use crate::error::{Error, Result};

pub fn run(ctx: &Context, args: &ShowArgs) -> Result<()> {
    let client = &ctx.client;
    let (id, found) = resolve(client, &args.image)?;
    if client.settings().dry_run {
        let mut out = std::io::stdout().lock();
        out.write_all(client.get_image_request(&id).render().as_bytes())?;
        return out.flush().map_err(Error::from);
    }
    let image = match found {
        Some(image) => image,
        None => client.get_image(&id)?,
    };
    ctx.print(&image)
}
