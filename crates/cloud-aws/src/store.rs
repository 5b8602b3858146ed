//! Ignition configs too large for EC2 user data, kept in a private S3 bucket.
//!
//! A control-plane node's Ignition config carries about forty certificates, keys and
//! kubeconfigs: some 85 KB, 28 KB gzip-compressed, which is over EC2's 16 KiB user-data limit
//! even as the gzip stub of [`crate::userdata`]. Such a config is uploaded to one bucket per
//! cluster and region, and the instance gets a small stub whose `ignition.config.replace`
//! points at a presigned HTTPS URL of the object, with its SHA-512 as `verification.hash` (so a
//! changed object is refused). No instance role is needed.
//!
//! The bucket's name is derived, not stored: `frankenetes-<cluster>-<8 hex>`, the hex from
//! the account's canonical ID (S3 `ListBuckets`), the region and the cluster name. So `up`
//! finds it again, `down` deletes it (objects first) and `audit` reports it, with no state file,
//! also after an `up` that crashed between creating the bucket and tagging it. Public access is
//! blocked on it; S3 encrypts objects at rest (SSE-S3) by default.
//!
//! The nodes reach S3 through the gateway's NAT, so they fetch their configs once the gateway
//! forwards; Ignition retries the fetch until then. The URLs are valid for [`URL_VALIDITY`];
//! a machine launched later by another `up` gets a fresh one.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, PublicAccessBlockConfiguration, Tag,
    Tagging,
};
use frankenetes_compute::ClusterTag;
use sha2::{Digest, Sha256, Sha512};

use crate::Error;
use crate::error::api;
use crate::tags::ROLE_KEY;

/// How long the presigned URL in a stub stays valid.
pub(crate) const URL_VALIDITY: Duration = Duration::from_secs(24 * 3600);

/// The Ignition spec version of the stub.
const STUB_VERSION: &str = "3.4.0";

/// The payload bucket of one cluster in one region.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    s3: aws_sdk_s3::Client,
    region: String,
    cluster: String,
}

impl Store {
    pub(crate) fn new(sdk: &aws_config::SdkConfig, region: Option<&str>, cluster: &str) -> Self {
        let mut conf = aws_sdk_s3::config::Builder::from(sdk);
        if let Some(r) = region {
            conf = conf.region(aws_sdk_s3::config::Region::new(r.to_owned()));
        }
        // An endpoint override (an emulator) has no per-bucket DNS names.
        if sdk.endpoint_url().is_some() {
            conf = conf.force_path_style(true);
        }
        let conf = conf.build();
        let region = conf
            .region()
            .map(|r| r.as_ref().to_owned())
            .unwrap_or_else(|| "us-east-1".to_owned());
        Self {
            s3: aws_sdk_s3::Client::from_conf(conf),
            region,
            cluster: cluster.to_owned(),
        }
    }

    /// The bucket name for an account's canonical ID (bucket names are global: the hash keeps
    /// two accounts or regions with the same cluster name apart).
    pub(crate) fn bucket_name(&self, owner_id: &str) -> String {
        let digest = Sha256::digest(format!("{owner_id}/{}/{}", self.region, self.cluster));
        let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        // 3–63 characters: "frankenetes-" (12) + name (≤ 42) + "-" + 8.
        let mut name: String = self.cluster.chars().take(42).collect();
        while name.ends_with('-') {
            name.pop();
        }
        format!("frankenetes-{name}-{hex}")
    }

    /// This cluster's bucket name, and whether the bucket exists. Read-only.
    pub(crate) async fn find(&self) -> Result<(String, bool), Error> {
        let out = self
            .s3
            .list_buckets()
            .send()
            .await
            .map_err(|e| api("ListBuckets", &self.cluster, e))?;
        let owner = out.owner().and_then(|o| o.id()).unwrap_or_default();
        let name = self.bucket_name(owner);
        let exists = out
            .buckets()
            .iter()
            .any(|b| b.name() == Some(name.as_str()));
        Ok((name, exists))
    }

    /// Creates the bucket when missing (tagged, public access blocked); returns its name and
    /// whether it was created.
    pub(crate) async fn ensure(&self) -> Result<(String, bool), Error> {
        let (name, exists) = self.find().await?;
        if exists {
            return Ok((name, false));
        }
        let mut req = self.s3.create_bucket().bucket(&name);
        if self.region != "us-east-1" {
            req = req.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(self.region.as_str()))
                    .build(),
            );
        }
        if let Err(e) = req.send().await {
            let e = api("CreateBucket", &name, e);
            match e.code() {
                Some("BucketAlreadyOwnedByYou") => {}
                Some("BucketAlreadyExists") => {
                    return Err(Error::Spec {
                        field: "metadata.name".into(),
                        message: format!(
                            "the S3 bucket name {name} (for Ignition configs over 16 KiB) belongs to another account; rename the cluster"
                        ),
                    });
                }
                _ => return Err(e),
            }
        }
        let block = PublicAccessBlockConfiguration::builder()
            .block_public_acls(true)
            .ignore_public_acls(true)
            .block_public_policy(true)
            .restrict_public_buckets(true)
            .build();
        self.s3
            .put_public_access_block()
            .bucket(&name)
            .public_access_block_configuration(block)
            .send()
            .await
            .map_err(|e| api("PutPublicAccessBlock", &name, e))?;
        let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
        let tagging = Tagging::builder()
            .tag_set(tag(ClusterTag::KEY, &self.cluster).map_err(builder)?)
            .tag_set(tag(ROLE_KEY, "payloads").map_err(builder)?)
            .tag_set(tag("Name", &name).map_err(builder)?)
            .build()
            .map_err(builder)?;
        self.s3
            .put_bucket_tagging()
            .bucket(&name)
            .tagging(tagging)
            .send()
            .await
            .map_err(|e| api("PutBucketTagging", &name, e))?;
        Ok((name, true))
    }

    /// Uploads `payload` as `<unit>.ign` and returns the user data that fetches it.
    pub(crate) async fn put(
        &self,
        bucket: &str,
        unit: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let key = format!("{unit}.ign");
        self.s3
            .put_object()
            .bucket(bucket)
            .key(&key)
            .content_type("application/json")
            .body(payload.to_vec().into())
            .send()
            .await
            .map_err(|e| api("PutObject", format!("{bucket}/{key}"), e))?;
        let presign = PresigningConfig::expires_in(URL_VALIDITY).map_err(|e| Error::Spec {
            field: "presigned URL".into(),
            message: e.to_string(),
        })?;
        let url = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(&key)
            .presigned(presign)
            .await
            .map_err(|e| api("GetObject (presign)", format!("{bucket}/{key}"), e))?;
        Ok(stub(url.uri(), payload))
    }

    /// Deletes every object and the bucket; returns the bucket's name if there was one.
    pub(crate) async fn delete(&self) -> Result<Option<String>, Error> {
        let (name, exists) = self.find().await?;
        if !exists {
            return Ok(None);
        }
        loop {
            let out = self
                .s3
                .list_objects_v2()
                .bucket(&name)
                .send()
                .await
                .map_err(|e| api("ListObjectsV2", &name, e))?;
            if out.contents().is_empty() {
                break;
            }
            for o in out.contents() {
                if let Some(key) = o.key() {
                    self.s3
                        .delete_object()
                        .bucket(&name)
                        .key(key)
                        .send()
                        .await
                        .map_err(|e| api("DeleteObject", format!("{name}/{key}"), e))?;
                }
            }
        }
        match self.s3.delete_bucket().bucket(&name).send().await {
            Ok(_) => Ok(Some(name)),
            Err(e) => {
                let e = api("DeleteBucket", &name, e);
                if e.code() == Some("NoSuchBucket") {
                    Ok(Some(name))
                } else {
                    Err(e)
                }
            }
        }
    }
}

fn builder(e: aws_sdk_s3::error::BuildError) -> Error {
    Error::Spec {
        field: "S3 tagging".into(),
        message: e.to_string(),
    }
}

/// An Ignition config that replaces itself with the one at `url`, checked against `payload`'s
/// SHA-512.
pub(crate) fn stub(url: &str, payload: &[u8]) -> Vec<u8> {
    let hash: String = Sha512::digest(payload)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    // URLs carry no `"` or `\`: presigned S3 URLs are percent-encoded.
    format!(
        r#"{{"ignition":{{"version":"{STUB_VERSION}","config":{{"replace":{{"source":"{url}","verification":{{"hash":"sha512-{hash}"}}}}}}}}}}"#
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(region: &str, cluster: &str) -> Store {
        let sdk = crate::static_sdk_config("http://127.0.0.1:9", region, "a", "b");
        Store::new(&sdk, None, cluster)
    }

    #[test]
    fn bucket_names_are_valid_and_keep_accounts_and_regions_apart() {
        let a = store("eu-west-3", "lab");
        let name = a.bucket_name("owner-1");
        assert!(
            name.starts_with("frankenetes-lab-") && name.len() == 24,
            "{name}"
        );
        assert_eq!(name, a.bucket_name("owner-1"), "derived, not random");
        assert_ne!(name, a.bucket_name("owner-2"));
        assert_ne!(name, store("eu-west-1", "lab").bucket_name("owner-1"));
        let long = store("eu-west-3", &format!("{}-x", "a".repeat(41))).bucket_name("o");
        assert!(long.len() <= 63, "{long}");
        assert!(
            long.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !long.contains("--"),
            "{long}"
        );
    }

    #[test]
    fn stub_is_small_json_with_the_payloads_hash() {
        let url =
            "https://b.s3.eu-west-3.amazonaws.com/n.ign?X-Amz-Signature=abc&X-Amz-Expires=86400";
        let s = stub(url, b"{}");
        assert!(s.len() < 2048);
        let v: serde_json::Value = serde_json::from_slice(&s).unwrap();
        let replace = &v["ignition"]["config"]["replace"];
        assert_eq!(replace["source"], url);
        assert_eq!(
            replace["verification"]["hash"],
            "sha512-27c74670adb75075fad058d5ceaf7b20c4e7786c83bae8a32f626f9782af34c9a33c2046ef60fd2a7878d378e29fec851806bbd9a67878f3a9f1cda4830763fd"
        );
    }
}
