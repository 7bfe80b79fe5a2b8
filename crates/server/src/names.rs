//! Text for metric labels and log lines that requests choose (their chain id, the client's
//! address), remembered for the first few values only.
//!
//! A signer sees one or two chains and a handful of clients, yet every signing request
//! names its chain in a metric label and its log line (base58check costs two SHA-256
//! rounds and a base conversion each time), and every failed authentication labels its
//! client's address. Requests choose these values, so only the first `capacity` are
//! remembered and get a label series of their own: a flood of made-up chains or addresses
//! costs an encoding each and shares the label [`OTHER`], not memory.

use std::net::IpAddr;
use std::sync::{Arc, PoisonError, RwLock};
use tezos_crypto::ChainId;

/// The label of every value beyond the remembered ones.
pub const OTHER: &str = "other";

/// Chains remembered by name.
const CHAINS: usize = 16;
/// Client addresses remembered for metric labels.
const CLIENTS: usize = 64;

/// A value's text, and whether it is one of the remembered values.
#[derive(Debug, Clone)]
pub struct Name {
    pub text: Arc<str>,
    pub remembered: bool,
}

impl Name {
    /// The text for a metric label: the value's own while remembered, else [`OTHER`].
    pub fn label(&self) -> &str {
        if self.remembered {
            &self.text
        } else {
            OTHER
        }
    }
}

#[derive(Debug)]
pub struct RememberedNames<K> {
    capacity: usize,
    names: RwLock<Vec<(K, Arc<str>)>>,
}

impl<K: PartialEq + Copy> RememberedNames<K> {
    fn with_capacity(capacity: usize) -> Self {
        RememberedNames {
            capacity,
            names: RwLock::new(Vec::with_capacity(capacity)),
        }
    }

    /// `key`'s text, from the list or made by `encode` (and remembered while there is room).
    pub fn name(&self, key: &K, encode: impl FnOnce(&K) -> String) -> Name {
        // A panic elsewhere cannot leave this list wrong: entries are only ever pushed whole.
        let known = self.names.read().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, text)) = known.iter().find(|(k, _)| k == key) {
            return Name {
                text: Arc::clone(text),
                remembered: true,
            };
        }
        drop(known);
        let text: Arc<str> = Arc::from(encode(key));
        let mut names = self.names.write().unwrap_or_else(PoisonError::into_inner);
        let remembered = if names.iter().any(|(k, _)| k == key) {
            true
        } else if names.len() < self.capacity {
            names.push((*key, Arc::clone(&text)));
            true
        } else {
            false
        };
        Name { text, remembered }
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.names
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// Chain ids as `Net…`, as `ChainId::to_b58check` writes them.
#[derive(Debug)]
pub struct ChainNames(RememberedNames<ChainId>);

impl Default for ChainNames {
    fn default() -> Self {
        ChainNames(RememberedNames::with_capacity(CHAINS))
    }
}

impl ChainNames {
    pub fn name(&self, chain: &ChainId) -> Name {
        self.0.name(chain, ChainId::to_b58check)
    }
}

/// Client IP addresses, for the `client_ip` label of authentication failures.
#[derive(Debug)]
pub struct ClientNames(RememberedNames<IpAddr>);

impl Default for ClientNames {
    fn default() -> Self {
        ClientNames(RememberedNames::with_capacity(CLIENTS))
    }
}

impl ClientNames {
    pub fn name(&self, ip: &IpAddr) -> Name {
        self.0.name(ip, IpAddr::to_string)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_base58_of_the_chain_id_whether_remembered_or_not() {
        let names = ChainNames::default();
        for i in 0..=u8::try_from(CHAINS + 4).unwrap() {
            let chain = ChainId([i, 0x7a, 0x06, 0xa7]);
            let expected = chain.to_b58check();
            // Asked twice: the second answer comes from the list while there is room.
            let first = names.name(&chain);
            let second = names.name(&chain);
            assert_eq!(&*first.text, expected);
            assert_eq!(&*second.text, expected);
            let remembered = usize::from(i) < CHAINS;
            assert_eq!(
                (first.remembered, second.remembered),
                (remembered, remembered)
            );
            let label = if remembered { expected.as_str() } else { OTHER };
            assert_eq!(first.label(), label);
        }
        assert_eq!(names.0.remembered(), CHAINS);
    }

    #[test]
    fn the_main_chain_is_named_as_octez_names_it() {
        let names = ChainNames::default();
        let mainnet = ChainId([0x7a, 0x06, 0xa7, 0x70]);
        assert_eq!(&*names.name(&mainnet).text, "NetXdQprcVkpaWU");
    }

    #[test]
    fn client_addresses_beyond_the_first_share_one_label() {
        let names = ClientNames::default();
        let ip = |i: u32| IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        for i in 0..u32::try_from(CLIENTS).unwrap() {
            assert_eq!(names.name(&ip(i)).label(), ip(i).to_string());
        }
        let late = names.name(&ip(1000));
        assert_eq!(late.label(), OTHER);
        assert_eq!(&*late.text, "10.0.3.232");
        // The first ones keep their own label.
        assert_eq!(names.name(&ip(3)).label(), "10.0.0.3");
        assert_eq!(names.0.remembered(), CLIENTS);
    }
}
