//! `show IMAGE`: `GET /v2/images/{id}` (or the lookup by name, which already
//! returns the whole image).

use super::{is_image_id, read_image, resolve, Outcome, RunSettings};
use crate::cli::ShowArgs;
use crate::client::Client;
use crate::error::Result;

pub fn run(client: &Client, settings: RunSettings, args: &ShowArgs) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    if settings.dry_run {
        outcome.planned = Some(if is_image_id(&args.image) {
            client.get_image_request(&args.image)?
        } else {
            client.find_by_name_request(&args.image, false)?
        });
        return Ok(outcome);
    }
    let (id, found) = resolve(client, &args.image, &mut outcome)?;
    outcome.id = Some(id.clone());
    outcome.image = Some(match found {
        Some(image) => image,
        None => read_image(client, &id, &mut outcome)?,
    });
    Ok(outcome)
}
