//! Small helpers over `wacore-binary` nodes: reading attributes and building
//! the handful of reply shapes the server sends over and over.

use wacore_binary::builder::NodeBuilder;
use wacore_binary::{Jid, Node, NodeContent, NodeValue};

pub fn server_jid() -> Jid {
    Jid::new("", wacore_binary::Server::Pn)
}

pub fn attr(node: &Node, key: &str) -> Option<String> {
    node.attrs.get(key).map(|v| match v {
        NodeValue::String(s) => s.to_string(),
        NodeValue::Jid(j) => j.to_string(),
    })
}

pub fn jid_attr(node: &Node, key: &str) -> Option<Jid> {
    match node.attrs.get(key)? {
        NodeValue::Jid(j) => Some(j.clone()),
        NodeValue::String(s) => s.parse().ok(),
    }
}

pub fn child<'a>(node: &'a Node, tag: &str) -> Option<&'a Node> {
    node.children()?.iter().find(|c| c.tag == tag)
}

pub fn children<'a>(node: &'a Node, tag: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
    node.children().unwrap_or(&[]).iter().filter(move |c| c.tag == tag)
}

pub fn bytes(node: &Node) -> Option<&[u8]> {
    match &node.content {
        Some(NodeContent::Bytes(b)) => Some(b),
        Some(NodeContent::String(s)) => Some(s.as_bytes()),
        _ => None,
    }
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `<iq type="result">` answering `req`, from whoever it was addressed to.
pub fn iq_result(req: &Node, content: Vec<Node>) -> Node {
    let mut b = NodeBuilder::new("iq").attr("id", attr(req, "id").unwrap_or_default()).attr("type", "result");
    b = match jid_attr(req, "to") {
        Some(to) => b.attr("from", to),
        None => b.attr("from", server_jid()),
    };
    if !content.is_empty() {
        b = b.children(content);
    }
    b.build()
}

/// `<iq type="error">` answering `req`.
pub fn iq_error(req: &Node, code: u16, text: &str) -> Node {
    let mut b = NodeBuilder::new("iq").attr("id", attr(req, "id").unwrap_or_default()).attr("type", "error");
    b = match jid_attr(req, "to") {
        Some(to) => b.attr("from", to),
        None => b.attr("from", server_jid()),
    };
    b.children([NodeBuilder::new("error").attr("code", code.to_string()).attr("text", text).build()]).build()
}

/// `<stream:error code=…>`, with the child that says why when there is one.
pub fn stream_error(code: &str, reason: Option<Node>) -> Node {
    let b = NodeBuilder::new("stream:error").attr("code", code);
    match reason {
        Some(reason) => b.children([reason]).build(),
        None => b.build(),
    }
}

pub fn random_id() -> String {
    let n: u64 = rand::random();
    format!("{n:016X}")
}

/// Renders a node as one line of pseudo-XML for logs.
pub fn brief(node: &Node) -> String {
    let mut s = format!("<{}", node.tag);
    for (k, v) in node.attrs.iter() {
        let v = match v {
            NodeValue::String(s) => s.to_string(),
            NodeValue::Jid(j) => j.to_string(),
        };
        s.push_str(&format!(" {k}=\"{v}\""));
    }
    match &node.content {
        None => s.push_str("/>"),
        Some(NodeContent::Bytes(b)) => s.push_str(&format!(">[{} bytes]</{}>", b.len(), node.tag)),
        Some(NodeContent::String(t)) => s.push_str(&format!(">{t}</{}>", node.tag)),
        Some(NodeContent::Nodes(ns)) => {
            s.push('>');
            for n in ns {
                s.push_str(&brief(n));
            }
            s.push_str(&format!("</{}>", node.tag));
        }
    }
    s
}
