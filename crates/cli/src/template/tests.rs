use super::*;

fn data() -> Value {
    serde_json::from_str(
        r#"{
        "Id": "abc123",
        "Name": "/web",
        "State": {"Status": "running", "Running": true, "ExitCode": 0, "Pid": 42},
        "Config": {"Env": ["A=1", "B=2"], "Labels": {"com.x": "y", "a": "b"}, "Cmd": null, "Tty": false},
        "Mounts": [{"Source": "/h", "Destination": "/c"}, {"Source": "/h2", "Destination": "/c2"}],
        "HostConfig": {"Memory": 536870912, "NanoCpus": 0},
        "Count": 3,
        "Ratio": 1.5
    }"#,
    )
    .unwrap()
}

fn r(t: &str) -> String {
    Template::parse(t).unwrap().render(&data()).unwrap()
}

fn fails(t: &str) -> String {
    match Template::parse(t) {
        Err(e) => e.0,
        Ok(tpl) => tpl.render(&data()).unwrap_err().0,
    }
}

#[test]
fn fields_and_text() {
    assert_eq!(r("{{.State.Status}}"), "running");
    assert_eq!(r("id={{.Id}} pid={{.State.Pid}}"), "id=abc123 pid=42");
    assert_eq!(r("{{.Nope}}"), "<no value>");
    assert_eq!(r("{{.Config.Cmd}}"), "<nil>");
    assert_eq!(r("{{.Config.Env}}"), "[A=1 B=2]");
    assert_eq!(r("{{.Config.Labels}}"), "map[a:b com.x:y]");
    assert_eq!(r("{{.HostConfig.Memory}}"), "536870912");
    assert_eq!(r("{{.Ratio}}"), "1.5");
    assert_eq!(r("plain text"), "plain text");
    assert_eq!(r(""), "");
}

#[test]
fn json_function_and_pipes() {
    assert_eq!(r("{{json .Config.Labels}}"), r#"{"com.x":"y","a":"b"}"#);
    assert_eq!(r("{{.Config.Env | json}}"), r#"["A=1","B=2"]"#);
    assert_eq!(r("{{json .Config.Cmd}}"), "null");
    assert_eq!(r("{{.Name | upper}}"), "/WEB");
    assert_eq!(r("{{.State.Status | upper | lower}}"), "running");
    assert_eq!(r("{{json .}}").len(), data().to_json().len());
}

#[test]
fn index_join_split_and_friends() {
    assert_eq!(r(r#"{{index .Config.Labels "com.x"}}"#), "y");
    assert_eq!(r(r#"{{index .Config.Env 1}}"#), "B=2");
    assert_eq!(r(r#"{{index .Config.Labels "missing"}}"#), "<no value>");
    assert_eq!(r(r#"{{join .Config.Env ","}}"#), "A=1,B=2");
    assert_eq!(r(r#"{{join (split "a:b:c" ":") "-"}}"#), "a-b-c");
    assert_eq!(r(r#"{{title "hello world"}}"#), "Hello World");
    assert_eq!(r(r#"{{upper "x"}}{{lower "Y"}}"#), "Xy");
    assert_eq!(r(r#"{{printf "%s:%d" .Id .Count}}"#), "abc123:3");
    assert_eq!(r(r#"{{printf "%.1f" .Ratio}}"#), "1.5");
    assert_eq!(r(r#"{{len .Mounts}} {{len .Id}}"#), "2 6");
    assert_eq!(r(r#"{{pad .Id 1 2}}|"#), " abc123  |");
    assert_eq!(r(r#"{{truncate .Id 3}}"#), "abc");
    assert_eq!(r(r#"{{slice .Id 1 3}}"#), "bc");
    assert_eq!(r(r#"{{print "a" 1 2 "b"}}"#), "a1 2b");
    assert_eq!(r(r#"{{println "a" 1}}"#), "a 1\n");
    assert_eq!(r(r#"{{(index .Mounts 1).Source}}"#), "/h2");
    // Docker's `.Label "key"` style: a map field with one argument.
    assert_eq!(
        r(r#"{{.Config.Labels "com.x"}}|{{.Config.Labels "none"}}|"#),
        "y||"
    );
}

#[test]
fn conditions() {
    assert_eq!(r("{{if .State.Running}}up{{else}}down{{end}}"), "up");
    assert_eq!(r("{{if .Config.Tty}}tty{{else}}no tty{{end}}"), "no tty");
    assert_eq!(
        r(
            r#"{{if eq .State.Status "exited"}}E{{else if eq .State.Status "running"}}R{{else}}?{{end}}"#
        ),
        "R"
    );
    assert_eq!(
        r(r#"{{if and .State.Running (not .Config.Tty)}}yes{{end}}"#),
        "yes"
    );
    assert_eq!(
        r(r#"{{if or .Config.Tty .Nope}}yes{{else}}no{{end}}"#),
        "no"
    );
    assert_eq!(
        r(r#"{{if gt .Count 2}}big{{end}}{{if lt .Ratio 1.0}}small{{end}}"#),
        "big"
    );
    assert_eq!(r(r#"{{if ne .Count 3}}x{{else}}three{{end}}"#), "three");
    assert_eq!(r(r#"{{if eq .Count 1 2 3}}in{{end}}"#), "in");
    assert_eq!(
        r(r#"{{with .State}}{{.Status}}/{{.Pid}}{{end}}"#),
        "running/42"
    );
    assert_eq!(r(r#"{{with .Nope}}x{{else}}none{{end}}"#), "none");
}

#[test]
fn ranges_and_variables() {
    assert_eq!(
        r("{{range .Mounts}}{{.Source}}->{{.Destination}} {{end}}"),
        "/h->/c /h2->/c2 "
    );
    assert_eq!(
        r("{{range $i, $e := .Config.Env}}{{$i}}={{$e}};{{end}}"),
        "0=A=1;1=B=2;"
    );
    assert_eq!(
        r("{{range $k, $v := .Config.Labels}}{{$k}}:{{$v}} {{end}}"),
        "a:b com.x:y "
    );
    assert_eq!(r("{{range .Config.Cmd}}x{{else}}empty{{end}}"), "empty");
    assert_eq!(
        r("{{$n := .Name}}{{range .Mounts}}{{$n}}{{end}}"),
        "/web/web"
    );
    assert_eq!(r("{{range .Mounts}}{{$.Id}}{{end}}"), "abc123abc123");
    assert_eq!(
        r("{{range $m := .Mounts}}{{$m.Source}}{{break}}{{end}}"),
        "/h"
    );
    assert_eq!(
        r("{{range .Config.Env}}{{if eq . \"A=1\"}}{{continue}}{{end}}{{.}}{{end}}"),
        "B=2"
    );
    assert_eq!(r("{{$x := 1}}{{$x = 2}}{{$x}}"), "2");
    assert_eq!(r("{{range 3}}{{.}}{{end}}"), "012");
}

#[test]
fn trim_markers_and_comments() {
    assert_eq!(r("a  {{- .Id -}}  b"), "aabc123b");
    assert_eq!(r("a {{/* note */}}b"), "a b");
    assert_eq!(r("a {{- /* note */ -}} b"), "ab");
    assert_eq!(r("{{\"}}\"}}"), "}}");
    assert_eq!(r("{{`raw\\n`}}"), "raw\\n");
    assert_eq!(r("{{-1}} {{0x10}} {{'a'}}"), "-1 16 97");
}

#[test]
fn errors() {
    assert!(fails("{{.Id").contains("unclosed action"));
    assert!(fails("{{if .Id}}x").contains("unexpected EOF"));
    assert!(fails("{{end}}").contains("unexpected"));
    assert!(fails("{{nosuch .Id}}").contains("function \"nosuch\" not defined"));
    assert!(fails("{{.Id.Deeper}}").contains("can't evaluate field Deeper"));
    assert!(fails("{{.Id 1}}").contains("non-function"));
    assert!(fails("{{.Config.Labels 1 2}}").contains("non-function"));
    assert!(fails("{{index .Config.Env 5}}").contains("out of range"));
    assert!(fails("{{break}}").contains("outside"));
    assert!(fails("{{$nope}}").contains("undefined variable"));
    assert!(fails("{{json}}").contains("wrong number of args"));
}

#[test]
fn list_formats() {
    let rows = vec![
        Value::map([("ID", Value::str("abc")), ("Names", Value::str("web"))]),
        Value::map([
            ("ID", Value::str("defghijklmnop")),
            ("Names", Value::str("db")),
        ]),
    ];
    let header = Value::map([
        ("ID", Value::str("CONTAINER ID")),
        ("Names", Value::str("NAMES")),
    ]);
    let f = ListFormat::parse("table {{.ID}}\\t{{.Names}}").unwrap();
    assert_eq!(
        f.render(&header, &rows).unwrap(),
        "CONTAINER ID    NAMES\nabc             web\ndefghijklmnop   db\n"
    );
    let f = ListFormat::parse("{{.Names}}").unwrap();
    assert_eq!(f.render(&header, &rows).unwrap(), "web\ndb\n");
    let labelled = vec![Value::map([("Labels", Value::str("a=1,com.x=y"))])];
    let f = ListFormat::parse(r#"{{.Label "com.x"}}/{{.Label "a"}}/{{.Label "no"}}"#).unwrap();
    assert_eq!(f.render(&header, &labelled).unwrap(), "y/1/\n");
    let f = ListFormat::parse("json").unwrap();
    assert_eq!(
        f.render(&header, &rows[..1]).unwrap(),
        "{\"ID\":\"abc\",\"Names\":\"web\"}\n"
    );
    let f = ListFormat::parse("table").unwrap();
    assert!(f.table);
}
