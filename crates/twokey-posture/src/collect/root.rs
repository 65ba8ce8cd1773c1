//! Centralized root access (`iam:ListOrganizationsFeatures`), read in the
//! management account. moto answers this call with a 500, so the test below
//! parses a recorded answer in the shape of the SDK's model
//! (`aws-sdk-iam` `protocol_serde/shape_list_organizations_features.rs`)
//! served from a loopback socket.

use aws_config::SdkConfig;

use super::failed;
use crate::facts::{Collected, RootAccess};

/// The organisation's enabled root features, or why they could not be read.
pub(crate) async fn root_access(base: &SdkConfig) -> Collected<RootAccess> {
    match aws_sdk_iam::Client::new(base)
        .list_organizations_features()
        .send()
        .await
    {
        Ok(o) => Collected::Ok(RootAccess {
            organization_id: o.organization_id().map(str::to_string),
            enabled_features: o
                .enabled_features()
                .iter()
                .map(|f| f.as_str().to_string())
                .collect(),
        }),
        Err(e) => Collected::Error(failed(
            "iam:ListOrganizationsFeatures",
            "the organisation",
            e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An IAM query-protocol answer as AWS sends it.
    const RECORDED: &str = r#"<ListOrganizationsFeaturesResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <ListOrganizationsFeaturesResult>
    <OrganizationId>o-aa111bb222</OrganizationId>
    <EnabledFeatures>
      <member>RootCredentialsManagement</member>
      <member>RootSessions</member>
    </EnabledFeatures>
  </ListOrganizationsFeaturesResult>
  <ResponseMetadata>
    <RequestId>b6d5a8c2-2f5e-4c0f-9d8a-1e2f3a4b5c6d</RequestId>
  </ResponseMetadata>
</ListOrganizationsFeaturesResponse>"#;

    /// Serves `status` + `body` to every connection; returns the URL and
    /// the request bodies it saw.
    async fn serve(
        status: &'static str,
        body: &'static str,
    ) -> (String, tokio::task::JoinHandle<String>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", l.local_addr().expect("addr"));
        let h = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.expect("accept");
            let mut buf = vec![0u8; 65536];
            let mut got = Vec::new();
            loop {
                let n = s.read(&mut buf).await.expect("read");
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if got.len() >= end + 4 + len || n == 0 {
                        break;
                    }
                }
            }
            let reply = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            s.write_all(reply.as_bytes()).await.expect("write");
            String::from_utf8_lossy(&got).to_string()
        });
        (url, h)
    }

    async fn config(url: &str) -> SdkConfig {
        twokey_aws::client::Connection {
            endpoint_url: Some(url.into()),
            region: Some("us-east-1".into()),
            credentials: Some(aws_credential_types::Credentials::new(
                "AKIDTEST", "secret", None, None, "test",
            )),
            ..Default::default()
        }
        .load()
        .await
    }

    #[tokio::test]
    async fn reads_the_enabled_features_from_a_recorded_answer() {
        let (url, seen) = serve("200 OK", RECORDED).await;
        let got = root_access(&config(&url).await).await;
        let request = seen.await.expect("served");
        assert!(
            request.contains("Action=ListOrganizationsFeatures"),
            "{request}"
        );
        match got {
            Collected::Ok(a) => {
                assert_eq!(a.organization_id.as_deref(), Some("o-aa111bb222"));
                assert!(
                    a.has(RootAccess::CREDENTIALS_MANAGEMENT) && a.has(RootAccess::ROOT_SESSIONS)
                );
            }
            Collected::Error(e) => panic!("{e}"),
        }
    }

    #[tokio::test]
    async fn a_refusal_is_collected_as_an_error_naming_the_call() {
        const DENIED: &str = r#"<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>OrganizationNotInAllFeaturesModeException</Code><Message>The organization is not in all-features mode.</Message></Error><RequestId>1</RequestId></ErrorResponse>"#;
        let (url, _seen) = serve("400 Bad Request", DENIED).await;
        match root_access(&config(&url).await).await {
            Collected::Error(e) => assert!(
                e.contains("iam:ListOrganizationsFeatures")
                    && e.contains("OrganizationNotInAllFeaturesModeException"),
                "{e}"
            ),
            Collected::Ok(a) => panic!("{a:?}"),
        }
    }
}
