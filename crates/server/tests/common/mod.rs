//! What the listener tests share.

use async_trait::async_trait;
use signatory_signer::vault::{Vault, VaultError, VaultKey};
use signatory_vaults::MemVault;
use std::net::SocketAddr;
use std::time::Duration;
use tezos_crypto::{PublicKey, PublicKeyHash, Signature, SigningVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A vault that takes its time to sign.
#[derive(Debug)]
pub struct SlowVault {
    pub inner: MemVault,
    pub delay: Duration,
}

#[async_trait]
impl Vault for SlowVault {
    fn name(&self) -> &str {
        "slow"
    }
    fn driver(&self) -> &'static str {
        "test"
    }
    async fn list_keys(&self) -> Result<Vec<VaultKey>, VaultError> {
        self.inner.list_keys().await
    }
    async fn sign(
        &self,
        pkh: &PublicKeyHash,
        message: &[u8],
        version: SigningVersion,
    ) -> Result<Signature, VaultError> {
        tokio::time::sleep(self.delay).await;
        self.inner.sign(pkh, message, version).await
    }
    async fn prove_possession(
        &self,
        pkh: &PublicKeyHash,
        override_pk: Option<&PublicKey>,
    ) -> Result<Signature, VaultError> {
        self.inner.prove_possession(pkh, override_pk).await
    }
}

/// One HTTP/1.1 request on a fresh connection; the status and the body.
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: signer\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
