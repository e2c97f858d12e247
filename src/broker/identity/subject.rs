//! A certificate subject printed as OpenSSL prints it with `X509_NAME_print_ex(bio, name, 0,
//! XN_FLAG_RFC2253)`: the username Mosquitto's `use_subject_as_username` gives a client.
//!
//! The format, as OpenSSL 3.0 writes it (`crypto/asn1/a_strex.c`):
//! * the attributes last to first (so `CN=...` usually comes first); between RDNs a `,`, between the
//!   attributes of one multi-valued RDN a `+`, no spaces; each as `NAME=value` with OpenSSL's short
//!   name (`CN`, `O`, `OU`, `C`, `ST`, `L`, `emailAddress`, `DC`, `UID`, ...);
//! * values escaped one byte at a time: `"` `+` `,` `;` `<` `>` `\` get a backslash, and so do `#` or
//!   a space as the first character and a space as the last (a one-character value counts only as
//!   last); control bytes, 0x7F and every byte above 0x7F become `\XX` in upper-case hex, so
//!   non-ASCII text shows as its escaped UTF-8 bytes and the username is always ASCII;
//! * UTF8String values are taken byte by byte; PrintableString, IA5String, TeletexString (as
//!   Latin-1), NumericString, VisibleString, UTCTime and GeneralizedTime character by character and
//!   BMPString as UCS-2, each character converted to UTF-8 first.
//!
//! What OpenSSL would print from knowledge this module does not have is refused instead of guessed:
//! an attribute whose OID is not in [`SHORT_NAMES`] (OpenSSL prints its own short name when it knows
//! the OID, else the dotted OID and a hex dump) and a value of any other ASN.1 type (a hex dump).

use std::fmt::Write as _;

use x509_cert::der::asn1::Any;
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::{Tag, Tagged};
use x509_cert::name::Name;

use super::CertProblem;

const fn oid(dotted: &str) -> ObjectIdentifier {
    ObjectIdentifier::new_unwrap(dotted)
}

/// The subject attributes printed by short name, as OpenSSL 3.0 names them (checked with
/// `openssl x509 -noout -subject -nameopt RFC2253`).
pub const SHORT_NAMES: &[(ObjectIdentifier, &str)] = &[
    (oid("2.5.4.3"), "CN"),
    (oid("2.5.4.4"), "SN"),
    (oid("2.5.4.5"), "serialNumber"),
    (oid("2.5.4.6"), "C"),
    (oid("2.5.4.7"), "L"),
    (oid("2.5.4.8"), "ST"),
    (oid("2.5.4.9"), "street"),
    (oid("2.5.4.10"), "O"),
    (oid("2.5.4.11"), "OU"),
    (oid("2.5.4.12"), "title"),
    (oid("2.5.4.13"), "description"),
    (oid("2.5.4.14"), "searchGuide"),
    (oid("2.5.4.15"), "businessCategory"),
    (oid("2.5.4.16"), "postalAddress"),
    (oid("2.5.4.17"), "postalCode"),
    (oid("2.5.4.18"), "postOfficeBox"),
    (oid("2.5.4.19"), "physicalDeliveryOfficeName"),
    (oid("2.5.4.20"), "telephoneNumber"),
    (oid("2.5.4.41"), "name"),
    (oid("2.5.4.42"), "GN"),
    (oid("2.5.4.43"), "initials"),
    (oid("2.5.4.44"), "generationQualifier"),
    (oid("2.5.4.45"), "x500UniqueIdentifier"),
    (oid("2.5.4.46"), "dnQualifier"),
    (oid("2.5.4.54"), "dmdName"),
    (oid("2.5.4.65"), "pseudonym"),
    (oid("2.5.4.72"), "role"),
    (oid("2.5.4.97"), "organizationIdentifier"),
    (oid("1.2.840.113549.1.9.1"), "emailAddress"),
    (oid("0.9.2342.19200300.100.1.1"), "UID"),
    (oid("0.9.2342.19200300.100.1.25"), "DC"),
    (oid("1.3.6.1.4.1.311.60.2.1.1"), "jurisdictionL"),
    (oid("1.3.6.1.4.1.311.60.2.1.2"), "jurisdictionST"),
    (oid("1.3.6.1.4.1.311.60.2.1.3"), "jurisdictionC"),
];

/// Where a character stands in its value: OpenSSL escapes some characters only at the ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum At {
    First,
    Middle,
    Last,
}

/// The subject as Mosquitto's `use_subject_as_username` spells it.
pub fn rfc2253(name: &Name) -> Result<String, CertProblem> {
    let mut out = String::new();
    let mut first = true;
    for rdn in name.0.iter().rev() {
        for (i, atv) in rdn.0.iter().rev().enumerate() {
            if !first {
                out.push(if i == 0 { ',' } else { '+' });
            }
            first = false;
            let short = SHORT_NAMES
                .iter()
                .find(|(o, _)| *o == atv.oid)
                .map(|(_, s)| *s)
                .ok_or_else(|| CertProblem::SubjectAttribute(format!("attribute {}", atv.oid)))?;
            out.push_str(short);
            out.push('=');
            push_value(&mut out, &atv.value, short)?;
        }
    }
    Ok(out)
}

/// Appends one attribute's value, escaped.
fn push_value(out: &mut String, value: &Any, name: &str) -> Result<(), CertProblem> {
    let bytes = value.value();
    let latin1 = || bytes.iter().map(|&b| u32::from(b));
    let written = match value.tag() {
        Tag::Utf8String => escape(out, latin1(), false),
        Tag::PrintableString
        | Tag::TeletexString
        | Tag::Ia5String
        | Tag::NumericString
        | Tag::VisibleString
        | Tag::UtcTime
        | Tag::GeneralizedTime => escape(out, latin1(), true),
        Tag::BmpString if bytes.len().is_multiple_of(2) => escape(
            out,
            bytes
                .chunks_exact(2)
                .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))),
            true,
        ),
        tag => {
            return Err(CertProblem::SubjectAttribute(format!(
                "a {name} value of type {tag}"
            )))
        }
    };
    written.ok_or_else(|| {
        CertProblem::SubjectAttribute(format!("a {name} value that is not valid text"))
    })
}

/// Escapes the characters `chars` (code points): with `to_utf8` each is written as UTF-8 first, else
/// each is a byte already. `None` when a character has no UTF-8 form (a lone surrogate).
fn escape(
    out: &mut String,
    chars: impl ExactSizeIterator<Item = u32>,
    to_utf8: bool,
) -> Option<()> {
    let last = chars.len().saturating_sub(1);
    for (i, c) in chars.enumerate() {
        let at = if i == last {
            At::Last
        } else if i == 0 {
            At::First
        } else {
            At::Middle
        };
        if to_utf8 {
            let mut buf = [0u8; 4];
            for &b in char::from_u32(c)?.encode_utf8(&mut buf).as_bytes() {
                escape_byte(out, b, at);
            }
        } else {
            escape_byte(out, u8::try_from(c).ok()?, at);
        }
    }
    Some(())
}

/// Appends one byte of a value, escaped; `at` is where its character stands.
fn escape_byte(out: &mut String, b: u8, at: At) {
    let backslash = matches!(b, b'"' | b'+' | b',' | b';' | b'<' | b'>' | b'\\')
        || (at == At::First && matches!(b, b' ' | b'#'))
        || (at == At::Last && b == b' ');
    if backslash {
        out.push('\\');
        out.push(char::from(b));
    } else if !(0x20..0x7f).contains(&b) {
        let _ = write!(out, "\\{b:02X}");
    } else {
        out.push(char::from(b));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_cert::attr::AttributeTypeAndValue;
    use x509_cert::der::asn1::SetOfVec;
    use x509_cert::name::{RdnSequence, RelativeDistinguishedName};

    /// A name from RDNs (in certificate order) of `(oid, tag, value bytes)`.
    fn name(rdns: &[&[(&str, Tag, &[u8])]]) -> Name {
        RdnSequence(
            rdns.iter()
                .map(|atvs| {
                    let mut set = SetOfVec::new();
                    for (o, tag, v) in atvs.iter() {
                        set.insert(AttributeTypeAndValue {
                            oid: ObjectIdentifier::new_unwrap(o),
                            value: Any::new(*tag, *v).expect("value"),
                        })
                        .expect("insert");
                    }
                    RelativeDistinguishedName(set)
                })
                .collect(),
        )
    }

    fn one(tag: Tag, v: &[u8]) -> Result<String, CertProblem> {
        rfc2253(&name(&[&[("2.5.4.3", tag, v)]]))
    }

    #[test]
    fn rdns_come_last_to_first_with_short_names() {
        let n = name(&[
            &[("2.5.4.6", Tag::PrintableString, b"ES")],
            &[("2.5.4.10", Tag::Utf8String, b"Uni")],
            &[("1.2.840.113549.1.9.1", Tag::Ia5String, b"a@b.c")],
            &[("2.5.4.3", Tag::Utf8String, b"user1")],
        ]);
        assert_eq!(
            rfc2253(&n).unwrap(),
            "CN=user1,emailAddress=a@b.c,O=Uni,C=ES"
        );
        assert_eq!(rfc2253(&name(&[])).unwrap(), "");
    }

    #[test]
    fn a_multi_valued_rdn_is_joined_with_plus() {
        let n = name(&[
            &[("2.5.4.10", Tag::Utf8String, b"Uni")],
            &[
                ("2.5.4.3", Tag::Utf8String, b"a"),
                ("2.5.4.11", Tag::Utf8String, b"b"),
            ],
        ]);
        // The SET is kept in DER order (CN's encoding sorts first), then printed in reverse.
        assert_eq!(rfc2253(&n).unwrap(), "OU=b+CN=a,O=Uni");
    }

    #[test]
    fn values_are_escaped_as_openssl_does() {
        let u = Tag::Utf8String;
        assert_eq!(
            one(u, b"a,b+c;d\"e<f>g\\h").unwrap(),
            r#"CN=a\,b\+c\;d\"e\<f\>g\\h"#
        );
        assert_eq!(one(u, b"#a# ").unwrap(), r"CN=\#a#\ ");
        assert_eq!(one(u, b" #a").unwrap(), r"CN=\ #a");
        assert_eq!(one(u, b"#").unwrap(), "CN=#");
        assert_eq!(one(u, b" ").unwrap(), r"CN=\ ");
        assert_eq!(one(u, b"a=b/c*").unwrap(), "CN=a=b/c*");
        assert_eq!(one(u, b"a\tb\x7f").unwrap(), r"CN=a\09b\7F");
        assert_eq!(one(u, "é".as_bytes()).unwrap(), r"CN=\C3\A9");
        // TeletexString is Latin-1: its byte 0xE9 is é too.
        assert_eq!(one(Tag::TeletexString, b"\xe9").unwrap(), r"CN=\C3\A9");
        assert_eq!(
            one(Tag::BmpString, &[0, b'h', 0, 0xe9]).unwrap(),
            r"CN=h\C3\A9"
        );
    }

    #[test]
    fn what_cannot_be_printed_exactly_is_refused() {
        assert!(rfc2253(&name(&[&[("1.2.3.4", Tag::Utf8String, b"x")]])).is_err());
        assert!(one(Tag::OctetString, b"x").is_err());
        assert!(one(Tag::BmpString, &[0xd8, 0]).is_err());
        assert!(one(Tag::BmpString, &[0]).is_err());
    }
}
