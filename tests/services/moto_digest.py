"""moto's server with KMS `Sign`/`Verify` honouring `MessageType=DIGEST`.

moto (5.2.x) ignores `MessageType` and always hashes `Message` with the algorithm's hash
(SHA-256 for `ECDSA_SHA_256`) before signing. Real KMS, given `MessageType=DIGEST`, signs
the 32 bytes it is sent as the hash itself, and refuses a digest of the wrong length.
Signatory sends Tezos's Blake2b-256 digest that way, so unpatched moto returns signatures
over SHA-256(digest), which verify against nothing Tezos signs (the signer refuses them).

This wrapper patches only that: for DIGEST, ECDSA signs and verifies the given bytes as a
prehashed SHA-256 value (`Prehashed(SHA256())`) after the length check KMS makes. Every
other moto behaviour (keys, states, errors, Encrypt/Decrypt) is moto's own.

Usage: python moto_digest.py [-H HOST] -p PORT   (the arguments of `moto_server`)
"""

import json
import sys
import threading

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from moto import server
from moto.kms import responses, utils as kms_utils
from moto.kms.exceptions import ValidationException

# Whether the request this thread serves asked for MessageType=DIGEST (werkzeug serves
# each request on its own thread).
_request = threading.local()

_DIGEST_LENGTHS = {"ECDSA_SHA_256": 32, "ECDSA_SHA_384": 48, "ECDSA_SHA_512": 64}
_HASHES = {
    "ECDSA_SHA_256": hashes.SHA256,
    "ECDSA_SHA_384": hashes.SHA384,
    "ECDSA_SHA_512": hashes.SHA512,
}


def _with_message_type(handler):
    def patched(self):
        params = json.loads(self.body)
        digest = params.get("MessageType") == "DIGEST"
        if digest:
            algorithm = params.get("SigningAlgorithm")
            message = self._get_param("Message") or b""
            expected = _DIGEST_LENGTHS.get(algorithm)
            if expected is not None and len(message) != expected:
                raise ValidationException(
                    f"Digest is invalid length for algorithm {algorithm}."
                )
        _request.digest = digest
        try:
            return handler(self)
        finally:
            _request.digest = False

    return patched


def _ecdsa(method):
    def patched(self, message, *args):
        if not getattr(_request, "digest", False):
            return method(self, message, *args)
        signing_algorithm = args[-1]
        algorithm = ec.ECDSA(utils.Prehashed(_HASHES[signing_algorithm]()))
        if len(args) == 1:
            return self.private_key.sign(message, algorithm)
        signature = args[0]
        try:
            self.private_key.public_key().verify(signature, message, algorithm)
            return True
        except Exception:  # cryptography's InvalidSignature, as moto's own verify
            return False

    return patched


responses.KmsResponse.sign = _with_message_type(responses.KmsResponse.sign)
responses.KmsResponse.verify = _with_message_type(responses.KmsResponse.verify)
kms_utils.ECDSAPrivateKey.sign = _ecdsa(kms_utils.ECDSAPrivateKey.sign)
kms_utils.ECDSAPrivateKey.verify = _ecdsa(kms_utils.ECDSAPrivateKey.verify)

if __name__ == "__main__":
    server.main(sys.argv[1:])
