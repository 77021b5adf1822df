//! An error and its causes said as one line, each cause once: many errors print their source
//! in their own message too, so the plain chain (`anyhow`'s `{:#}`) repeats it
//! (`Address already in use (os error 98): Address already in use (os error 98)`).

use std::error::Error;

/// `error: cause: deeper cause`, leaving out a cause whose words the text already holds.
pub fn chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !said.is_empty() && !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{what}")]
    struct Layer {
        what: String,
        #[source]
        source: Option<Box<Layer>>,
    }

    fn layers(words: &[&str]) -> Layer {
        words
            .iter()
            .rev()
            .fold(None, |inner: Option<Layer>, what| {
                Some(Layer {
                    what: what.to_string(),
                    source: inner.map(Box::new),
                })
            })
            .unwrap()
    }

    #[test]
    fn each_cause_is_said_once() {
        let repeated = layers(&["cannot listen: Address already in use", "Address already in use"]);
        assert_eq!(chain(&repeated), "cannot listen: Address already in use");
        let nested = layers(&[
            "transport error",
            "tcp connect error",
            "tcp connect error",
            "Connection refused",
        ]);
        assert_eq!(chain(&nested), "transport error: tcp connect error: Connection refused");
    }
}
