//! `show IMAGE`: `GET /v2/images/{id}` (or the lookup by name, which already
//! returns the whole image).

use super::{id_hint, is_image_id, print_request, resolve, Context};
use crate::cli::ShowArgs;
use crate::error::Result;

pub fn run(ctx: &Context, args: &ShowArgs) -> Result<()> {
    let client = &ctx.client;
    if client.settings().dry_run {
        return print_request(&if is_image_id(&args.image) {
            client.get_image_request(&args.image)
        } else {
            client.find_by_name_request(&args.image, false)
        });
    }
    let (id, found) = resolve(client, &args.image)?;
    let image = match found {
        Some(image) => image,
        None => client.get_image(&id).map_err(|e| id_hint(e, &id))?,
    };
    ctx.print(&image)
}
