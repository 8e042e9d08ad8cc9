//! An image uploaded by one client is downloaded and decrypted by another,
//! byte for byte, through the simulator's media endpoint.

mod common;

use whatsapp_rust::Jid;
use whatsapp_rust::download::MediaType;
use whatsapp_rust::upload::UploadOptions;
use whatsapp_rust::waproto::whatsapp as wa;

#[tokio::test(flavor = "multi_thread")]
async fn an_image_arrives_byte_for_byte() -> anyhow::Result<()> {
    let sim = wa_sim::WaSim::start().await?;
    sim.create_account("15550001111", "Alice")?;
    sim.create_account("15550002222", "Bob")?;
    let alice = common::link(&sim, "15550001111").await?;
    let bob = common::link(&sim, "15550002222").await?;

    let image: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let up = alice.client.upload(image.clone(), MediaType::Image, UploadOptions::default()).await?;
    let message = wa::Message {
        image_message: wa::message::ImageMessage {
            url: Some(up.url),
            direct_path: Some(up.direct_path),
            media_key: Some(up.media_key.to_vec()),
            file_enc_sha256: Some(up.file_enc_sha256.to_vec()),
            file_sha256: Some(up.file_sha256.to_vec()),
            file_length: Some(up.file_length),
            mimetype: Some("image/jpeg".into()),
            caption: Some("a picture".into()),
            ..Default::default()
        }
        .into(),
        ..Default::default()
    };
    alice.client.send_message(Jid::pn("15550002222"), message).await?;

    let event = bob.wait_for(15, |e| e.messages().any(|m| m.message.image_message.is_set())).await?;
    let msg = event.messages().find(|m| m.message.image_message.is_set()).expect("image");
    let img = msg.message.image_message.as_option().expect("image");
    assert_eq!(img.caption.as_deref(), Some("a picture"));
    let bytes = bob.client.download(img).await?;
    assert_eq!(bytes, image);

    alice.stop().await;
    bob.stop().await;
    Ok(())
}
