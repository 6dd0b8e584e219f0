//! DSQL's `CREATE INDEX` rules: `CREATE INDEX ASYNC` is accepted and run as
//! an ordinary index build; a plain `CREATE INDEX` or `CREATE INDEX
//! CONCURRENTLY` is rejected with DSQL's SQLSTATE and message.
//!
//! Statements are read with `sqlparser`'s PostgreSQL tokenizer, so comments,
//! string literals and dollar quoting never confuse the check. Other DSQL
//! limits (DDL mixed with DML, more than 8 key columns) are not modelled.

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

/// The gateway's decision on a statement text.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Forward unchanged.
    Pass,
    /// Forward this text instead (the `ASYNC` keyword removed).
    Rewrite(String),
    /// Run the statements before the unsupported one, then raise DSQL's
    /// error in its place. The statements after it never run, as after any
    /// error in a multi-statement query.
    Reject {
        /// The text before the unsupported statement, with `ASYNC` removed.
        /// It is empty when the unsupported statement comes first.
        preceding: String,
        /// The rule the statement breaks.
        refusal: Refusal,
    },
}

/// A statement DSQL does not support.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Refusal {
    /// `CREATE INDEX` without `ASYNC`.
    SynchronousIndex,
    /// `CREATE INDEX CONCURRENTLY`.
    ConcurrentIndex,
}

impl Refusal {
    /// Returns DSQL's SQLSTATE for the refusal.
    pub fn sqlstate(self) -> &'static str {
        "0A000"
    }

    /// Returns DSQL's message for the refusal.
    pub fn message(self) -> &'static str {
        match self {
            Self::SynchronousIndex => "unsupported mode. please use CREATE INDEX ASYNC.",
            Self::ConcurrentIndex => "CONCURRENTLY not supported for CREATE INDEX",
        }
    }

    /// Returns a statement that makes PostgreSQL raise this error, so that
    /// the session's transaction state changes exactly as for a real error.
    pub fn raising_statement(self) -> String {
        format!(
            "DO $dsql_gateway$ BEGIN RAISE EXCEPTION USING ERRCODE = '{}', MESSAGE = '{}'; END $dsql_gateway$",
            self.sqlstate(),
            self.message()
        )
    }
}

/// Checks every statement in `sql` against DSQL's index rules.
pub fn check(sql: &str) -> Verdict {
    // Most statements never mention an index; skip the tokenizer for them.
    if !contains_ignore_ascii_case(sql.as_bytes(), b"index") {
        return Verdict::Pass;
    }
    let dialect = PostgreSqlDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize_with_location() else {
        // PostgreSQL reports the syntax error itself.
        return Verdict::Pass;
    };

    let offsets = LineOffsets::new(sql);
    let mut async_spans = Vec::new();
    for statement in tokens.split(|token| token.token == Token::SemiColon) {
        let words: Vec<&TokenWithSpan> = statement
            .iter()
            .filter(|token| !matches!(token.token, Token::Whitespace(_)))
            .collect();
        let refusal = match classify(&words) {
            IndexStatement::NotIndex => continue,
            IndexStatement::Async(token) => {
                async_spans.push(token);
                continue;
            }
            IndexStatement::Concurrent => Refusal::ConcurrentIndex,
            IndexStatement::Synchronous => Refusal::SynchronousIndex,
        };
        let start = words.first().map_or(0, |word| offsets.of(word.span.start));
        return Verdict::Reject {
            preceding: without_spans(&sql[..start], &offsets, &async_spans),
            refusal,
        };
    }
    if async_spans.is_empty() {
        return Verdict::Pass;
    }
    Verdict::Rewrite(without_spans(sql, &offsets, &async_spans))
}

/// Copies `text`, a prefix of the checked statement text, leaving out the
/// given tokens.
fn without_spans(text: &str, offsets: &LineOffsets<'_>, spans: &[&TokenWithSpan]) -> String {
    let mut kept = String::with_capacity(text.len());
    let mut copied_to = 0;
    for token in spans {
        let start = offsets.of(token.span.start);
        let end = offsets.of(token.span.end);
        kept.push_str(&text[copied_to..start]);
        copied_to = end;
    }
    kept.push_str(&text[copied_to..]);
    kept
}

enum IndexStatement<'a> {
    NotIndex,
    Async(&'a TokenWithSpan),
    Concurrent,
    Synchronous,
}

fn classify<'a>(words: &[&'a TokenWithSpan]) -> IndexStatement<'a> {
    let mut position = 0;
    if !is_keyword(words.get(position), "CREATE") {
        return IndexStatement::NotIndex;
    }
    position += 1;
    if is_keyword(words.get(position), "UNIQUE") {
        position += 1;
    }
    if !is_keyword(words.get(position), "INDEX") {
        return IndexStatement::NotIndex;
    }
    position += 1;
    match words.get(position) {
        Some(token) if is_keyword(Some(token), "ASYNC") => IndexStatement::Async(token),
        Some(token) if is_keyword(Some(token), "CONCURRENTLY") => IndexStatement::Concurrent,
        _ => IndexStatement::Synchronous,
    }
}

fn is_keyword(token: Option<&&TokenWithSpan>, keyword: &str) -> bool {
    match token.map(|token| &token.token) {
        Some(Token::Word(word)) => {
            word.quote_style.is_none() && word.value.eq_ignore_ascii_case(keyword)
        }
        _ => false,
    }
}

fn contains_ignore_ascii_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle))
}

/// Converts the tokenizer's 1-based line and character column into byte
/// offsets of the original text.
struct LineOffsets<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> LineOffsets<'a> {
    fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(index, _)| index + 1));
        Self { text, line_starts }
    }

    fn of(&self, location: sqlparser::tokenizer::Location) -> usize {
        self.byte_offset(location.line, location.column)
    }

    fn byte_offset(&self, line: u64, column: u64) -> usize {
        let Some(&line_start) = self.line_starts.get(line.saturating_sub(1) as usize) else {
            return self.text.len();
        };
        self.text[line_start..]
            .char_indices()
            .nth(column.saturating_sub(1) as usize)
            .map_or(self.text.len(), |(index, _)| line_start + index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_without_index_pass() {
        assert_eq!(check("SELECT 1"), Verdict::Pass);
        assert_eq!(
            check("select abalance from pgbench_accounts where aid = $1"),
            Verdict::Pass
        );
    }

    #[test]
    fn async_index_is_rewritten_to_plain() {
        assert_eq!(
            check("CREATE INDEX ASYNC idx_city ON addresses (city)"),
            Verdict::Rewrite("CREATE INDEX  idx_city ON addresses (city)".into())
        );
        assert_eq!(
            check("create unique index async if not exists i on t(x);\nselect 1"),
            Verdict::Rewrite("create unique index  if not exists i on t(x);\nselect 1".into())
        );
    }

    #[test]
    fn async_index_after_multibyte_text_is_cut_at_the_right_byte() {
        let sql = "SELECT 'ünïcødé';\n  CREATE INDEX ASYNC i ON t (x)";
        assert_eq!(
            check(sql),
            Verdict::Rewrite("SELECT 'ünïcødé';\n  CREATE INDEX  i ON t (x)".into())
        );
    }

    #[test]
    fn plain_index_is_rejected() {
        for sql in [
            "CREATE INDEX i ON t (x)",
            "create unique index on t (x)",
            "SELECT 1; CREATE INDEX i ON t (x)",
            "/* c */ CREATE -- c\n INDEX i ON t (x)",
        ] {
            assert!(
                matches!(
                    check(sql),
                    Verdict::Reject {
                        refusal: Refusal::SynchronousIndex,
                        ..
                    }
                ),
                "{sql}"
            );
        }
    }

    #[test]
    fn statements_before_a_rejected_index_are_kept() {
        assert_eq!(
            check("BEGIN; CREATE INDEX ASYNC a ON t (x);\nCREATE INDEX b ON t (y); SELECT 1"),
            Verdict::Reject {
                preceding: "BEGIN; CREATE INDEX  a ON t (x);\n".into(),
                refusal: Refusal::SynchronousIndex
            }
        );
    }

    #[test]
    fn concurrent_index_is_rejected() {
        assert_eq!(
            check("CREATE INDEX CONCURRENTLY i ON t (x)"),
            Verdict::Reject {
                preceding: String::new(),
                refusal: Refusal::ConcurrentIndex
            }
        );
    }

    #[test]
    fn index_words_in_strings_and_comments_pass() {
        for sql in [
            "SELECT 'CREATE INDEX i ON t (x)'",
            "-- CREATE INDEX i ON t (x)\nSELECT 1",
            "SELECT $$CREATE INDEX i ON t (x)$$",
            "DROP INDEX i",
            "SELECT * FROM \"index\"",
        ] {
            assert_eq!(check(sql), Verdict::Pass, "{sql}");
        }
    }

    #[test]
    fn raising_statement_names_the_sqlstate() {
        let statement = Refusal::SynchronousIndex.raising_statement();
        assert!(statement.contains("'0A000'"));
        assert!(statement.contains("please use CREATE INDEX ASYNC"));
    }
}
