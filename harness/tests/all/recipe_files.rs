//! The recipes under `recipes/` that no test can hand to a real Traefik here
//! (Kubernetes CRDs, Docker Compose labels, the plugin-catalog static
//! config) are kept consistent with the file-provider recipes the Traefik
//! tests do run: each is read as YAML, its Cohort configuration goes through
//! the plugin's own parser and must equal the file recipe's, and its rules,
//! priorities, sticky cookies and references must match.

use std::collections::BTreeMap;

use ::cohort::Config;
use anyhow::{Context, Result, bail, ensure};
use serde_json::{Map, Value, json};

use crate::support::recipes::{WEIGHTED_STICKY, cohort_value, recipe};
use crate::support::sticky_value;
use crate::support::traefik::{ALIAS, MODULE};
use crate::support::yaml::{self, get, get_str};

/// Every recipe file, relative to `recipes/`.
const FILES: &[&str] = &[
    "file/flat-routers.yml",
    "file/multi-layer.yml",
    "file/weighted-sticky.yml",
    "static/local-plugin.yml",
    "static/plugin-catalog.yml",
    "static/access-log.yml",
    "static/metrics.yml",
    "kubernetes/middleware.yml",
    "kubernetes/ingressroute-flat.yml",
    "kubernetes/ingressroute-multi-layer.yml",
    "kubernetes/weighted-sticky.yml",
    "helm/values.yml",
    "helm/plugin-configmap.yml",
    "docker/compose.yml",
];

fn parse(path: &str) -> Result<Value> {
    yaml::parse(&recipe(path)?).with_context(|| format!("recipes/{path}"))
}

fn documents(path: &str) -> Result<Vec<Value>> {
    yaml::parse_documents(&recipe(path)?).with_context(|| format!("recipes/{path}"))
}

/// `value` through the plugin's parser, as a comparable string.
fn validated(value: &Value, what: &str) -> Result<String> {
    let config = Config::from_value(value).map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
    Ok(format!("{config:?}"))
}

/// The file recipe's Cohort configuration, validated.
fn file_cohort(path: &str) -> Result<String> {
    validated(&cohort_value(&recipe(path)?, "cohort")?, path)
}

/// The document of `kind` named `name`.
fn resource<'a>(docs: &'a [Value], kind: &str, name: &str) -> Result<&'a Value> {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .with_context(|| format!("no {kind} {name}"))
}

#[test]
fn recipes_readme_lists_every_recipe_and_every_recipe_parses() -> Result<()> {
    let readme = recipe("README.md")?;
    for path in FILES {
        ensure!(
            readme.contains(path),
            "recipes/README.md does not explain {path}"
        );
        ensure!(!documents(path)?.is_empty(), "{path} is empty");
    }
    // And nothing else is lying around unexplained.
    let mut found = Vec::new();
    for dir in ["file", "static", "kubernetes", "helm", "docker"] {
        let full = crate::support::traefik::repo_root()
            .join("recipes")
            .join(dir);
        for entry in std::fs::read_dir(&full)? {
            found.push(format!("{dir}/{}", entry?.file_name().to_string_lossy()));
        }
    }
    found.sort();
    let mut listed: Vec<String> = FILES.iter().map(|s| (*s).to_owned()).collect();
    listed.sort();
    assert_eq!(found, listed);
    Ok(())
}

#[test]
fn recipes_static_configs_load_the_plugin_under_the_tests_alias() -> Result<()> {
    let local = parse("static/local-plugin.yml")?;
    assert_eq!(
        get_str(
            &local,
            &format!("experimental.localPlugins.{ALIAS}.moduleName")
        )?,
        MODULE
    );
    let catalog = parse("static/plugin-catalog.yml")?;
    assert_eq!(
        get_str(
            &catalog,
            &format!("experimental.plugins.{ALIAS}.moduleName")
        )?,
        MODULE
    );
    assert_eq!(
        get_str(&catalog, &format!("experimental.plugins.{ALIAS}.version"))?,
        format!("v{}", env!("CARGO_PKG_VERSION")),
        "the catalog recipe names another release than this one"
    );
    // Apart from where the plugin comes from, the two are the same.
    for key in ["entryPoints", "providers"] {
        assert_eq!(local[key], catalog[key], "{key}");
    }
    Ok(())
}

#[test]
fn recipes_file_patterns_agree_with_each_other() -> Result<()> {
    let flat = file_cohort("file/flat-routers.yml")?;
    let multi = file_cohort("file/multi-layer.yml")?;
    assert_eq!(flat, multi, "flat and multi-layer Cohort configs differ");

    // Multi-layer: children point at a parent that has no service, and
    // have no entry points of their own.
    let doc = parse("file/multi-layer.yml")?;
    let routers = get(&doc, "http.routers")?.as_object().context("routers")?;
    let mut children = 0;
    for (name, router) in routers {
        if let Some(parents) = router.get("parentRefs") {
            children += 1;
            ensure!(
                router.get("entryPoints").is_none(),
                "{name} has entry points"
            );
            for parent in parents.as_array().context("parentRefs")? {
                let parent = parent.as_str().context("parent name")?;
                let parent = routers
                    .get(parent)
                    .with_context(|| format!("no {parent}"))?;
                ensure!(
                    parent.get("service").is_none(),
                    "parent of {name} has a service"
                );
                ensure!(parent["middlewares"] == json!(["cohort"]));
            }
        }
    }
    assert_eq!(children, 2);

    // Weighted: Cohort names the weighted service's children and cookie.
    let doc = parse("file/weighted-sticky.yml")?;
    let config = get(&doc, "http.middlewares.cohort.plugin.cohort")?;
    let split = get(&doc, "http.services.my-app-split.weighted")?;
    assert_eq!(
        get_str(config, "weightedSticky.cookie")?,
        get_str(split, "sticky.cookie.name")?
    );
    assert_eq!(get_str(config, "weightedSticky.cookie")?, WEIGHTED_STICKY);
    for i in 0..2 {
        assert_eq!(
            get_str(config, &format!("variants[{i}].service"))?,
            get_str(split, &format!("services[{i}].name"))?
        );
    }
    // Without `service`/`weightedSticky` it is the other recipes' config.
    let mut stripped = config.clone();
    stripped
        .as_object_mut()
        .context("config")?
        .remove("weightedSticky");
    for v in stripped["variants"].as_array_mut().context("variants")? {
        v.as_object_mut().context("variant")?.remove("service");
    }
    assert_eq!(validated(&stripped, "weighted, stripped")?, flat);
    Ok(())
}

/// `routers` of a file recipe, by priority: `(rule, middlewares, service)`.
fn file_routes(path: &str) -> Result<BTreeMap<String, (String, Value, String)>> {
    let doc = parse(path)?;
    let mut routes = BTreeMap::new();
    for router in get(&doc, "http.routers")?
        .as_object()
        .context("routers")?
        .values()
    {
        let priority = router["priority"].as_str().unwrap_or("0").to_owned();
        routes.insert(
            priority,
            (
                router["rule"].as_str().context("rule")?.to_owned(),
                router.get("middlewares").cloned().unwrap_or(Value::Null),
                router["service"].as_str().unwrap_or_default().to_owned(),
            ),
        );
    }
    Ok(routes)
}

/// The file recipe's service `name` sticky cookie.
fn file_pod_sticky(path: &str, service: &str) -> Result<Value> {
    Ok(get(
        &parse(path)?,
        &format!("http.services.{service}.loadBalancer.sticky"),
    )?
    .clone())
}

#[test]
fn recipes_kubernetes_match_the_file_recipes() -> Result<()> {
    let all: Vec<(&str, Vec<Value>)> = FILES
        .iter()
        .filter(|p| p.starts_with("kubernetes/"))
        .map(|p| Ok((*p, documents(p)?)))
        .collect::<Result<_>>()?;
    for (path, docs) in &all {
        for doc in docs {
            assert_eq!(doc["apiVersion"], "traefik.io/v1alpha1", "{path}");
            assert_eq!(doc["metadata"]["namespace"], "apps", "{path}");
        }
    }
    let docs: Vec<Value> = all.into_iter().flat_map(|(_, d)| d).collect();

    // The Middleware is the file recipes' Cohort.
    let middleware = resource(&docs, "Middleware", "cohort")?;
    assert_eq!(
        validated(get(middleware, "spec.plugin.cohort")?, "Middleware cohort")?,
        file_cohort("file/flat-routers.yml")?
    );

    // The flat IngressRoute: the file's routers, route by route.
    let flat = resource(&docs, "IngressRoute", "my-app-canary-sticky")?;
    let file = file_routes("file/flat-routers.yml")?;
    let routes = flat["spec"]["routes"].as_array().context("routes")?;
    assert_eq!(routes.len(), file.len());
    for route in routes {
        let priority = route["priority"].as_str().context("priority")?;
        let (rule, middlewares, service) = file.get(priority).context("priority")?;
        assert_eq!(route["match"], rule.as_str());
        assert_eq!(route["middlewares"], json!([{"name": "cohort"}]));
        assert_eq!(*middlewares, json!(["cohort"]));
        let k8s_service = &route["services"][0];
        assert_eq!(k8s_service["name"], service.as_str());
        assert_eq!(
            k8s_service["sticky"],
            file_pod_sticky("file/flat-routers.yml", service)?
        );
    }

    // Multi-layer: the parent runs Cohort with no service; the child names
    // it in spec.parentRefs and routes like the file's children.
    let parent = resource(&docs, "IngressRoute", "my-app")?;
    let parent_route = &parent["spec"]["routes"][0];
    assert!(parent_route.get("services").is_none());
    assert_eq!(parent_route["middlewares"], json!([{"name": "cohort"}]));
    let child = resource(&docs, "IngressRoute", "my-app-versions")?;
    assert_eq!(child["spec"]["parentRefs"], json!([{"name": "my-app"}]));
    assert!(child["spec"].get("entryPoints").is_none());
    let file = file_routes("file/multi-layer.yml")?;
    for route in child["spec"]["routes"].as_array().context("routes")? {
        let priority = route["priority"].as_str().context("priority")?;
        let (rule, _, service) = file.get(priority).context("priority")?;
        assert_eq!(route["match"], rule.as_str());
        assert_eq!(route["services"][0]["name"], service.as_str());
    }
    let (parent_rule, _, _) = file.get("0").context("file parent")?;
    assert_eq!(parent_route["match"], parent_rule.as_str());

    // Weighted: Cohort's children are the CRD provider's names of the
    // TraefikService's children, `<namespace>-<service>-<port>`, and its
    // cookie is the TraefikService's sticky cookie.
    let weighted = resource(&docs, "Middleware", "cohort-weighted")?;
    let config = get(weighted, "spec.plugin.cohort")?;
    let split = resource(&docs, "TraefikService", "my-app-split")?;
    assert_eq!(
        get_str(config, "weightedSticky.cookie")?,
        get_str(split, "spec.weighted.sticky.cookie.name")?
    );
    for i in 0..2 {
        let child = get(split, &format!("spec.weighted.services[{i}]"))?;
        let provider_name = format!(
            "{}-{}-{}",
            get_str(split, "metadata.namespace")?,
            get_str(child, "name")?,
            get_str(child, "port")?
        );
        assert_eq!(
            get_str(config, &format!("variants[{i}].service"))?,
            provider_name
        );
        assert_eq!(
            child["sticky"],
            file_pod_sticky("file/weighted-sticky.yml", get_str(child, "name")?)?
        );
    }
    let file_weighted = cohort_value(&recipe("file/weighted-sticky.yml")?, "cohort")?;
    let mut renamed = config.clone();
    for i in 0..2 {
        renamed["variants"][i]["service"] = file_weighted["variants"][i]["service"].clone();
    }
    assert_eq!(
        validated(&renamed, "cohort-weighted")?,
        file_cohort("file/weighted-sticky.yml")?
    );
    let route = resource(&docs, "IngressRoute", "my-app-weighted")?;
    let route = &route["spec"]["routes"][0];
    assert_eq!(route["middlewares"], json!([{"name": "cohort-weighted"}]));
    assert_eq!(
        route["services"],
        json!([{"name": "my-app-split", "kind": "TraefikService"}])
    );
    eprintln!(
        "weighted children in Kubernetes: {} = {}",
        get_str(config, "variants[1].service")?,
        sticky_value(get_str(config, "variants[1].service")?)
    );
    Ok(())
}

/// Traefik labels below `prefix.` as the JSON a plugin receives: dotted
/// keys nest, `name[i]` makes a list (as Traefik's label parser does).
fn labels_to_value(labels: &BTreeMap<String, String>, prefix: &str) -> Result<Value> {
    let mut root = Value::Object(Map::new());
    for (key, value) in labels {
        let Some(rest) = key.strip_prefix(&format!("{prefix}.")) else {
            continue;
        };
        let mut here = &mut root;
        for part in rest.split('.') {
            let (name, index) = match part.split_once('[') {
                Some((n, i)) => (n, Some(i.trim_end_matches(']').parse::<usize>()?)),
                None => (part, None),
            };
            let map = here.as_object_mut().context("label path crosses a value")?;
            here = map.entry(name).or_insert_with(|| match index {
                Some(_) => Value::Array(Vec::new()),
                None => Value::Object(Map::new()),
            });
            if let Some(i) = index {
                let list = here.as_array_mut().context("not a list")?;
                while list.len() <= i {
                    list.push(Value::Object(Map::new()));
                }
                here = &mut list[i];
            }
        }
        ensure!(
            here.as_object().is_some_and(Map::is_empty),
            "label {key} set twice"
        );
        *here = Value::String(value.clone());
    }
    Ok(root)
}

#[test]
fn recipes_docker_labels_match_the_flat_file_recipe() -> Result<()> {
    let compose = parse("docker/compose.yml")?;
    let services = compose["services"].as_object().context("services")?;
    let mut labels = BTreeMap::new();
    for service in services.values() {
        if let Some(l) = service.get("labels") {
            for (k, v) in l.as_object().context("labels as a map")? {
                let v = v
                    .as_str()
                    .with_context(|| format!("label {k} is not a string"))?;
                // Compose turns `$$` into `$`. The same label on several
                // containers (`traefik.enable`) must agree.
                let v = v.replace("$$", "$");
                if let Some(before) = labels.insert(k.clone(), v.clone())
                    && before != v
                {
                    bail!("label {k} set to {before:?} and {v:?}");
                }
            }
        }
    }

    let config = labels_to_value(
        &labels,
        &format!("traefik.http.middlewares.cohort.plugin.{ALIAS}"),
    )?;
    assert_eq!(
        validated(&config, "Docker labels")?,
        file_cohort("file/flat-routers.yml")?
    );

    let routers = labels_to_value(&labels, "traefik.http.routers")?;
    let file = file_routes("file/flat-routers.yml")?;
    assert_eq!(routers.as_object().context("routers")?.len(), file.len());
    for router in routers.as_object().context("routers")?.values() {
        let priority = get_str(router, "priority")?;
        let (rule, middlewares, service) = file.get(priority).context("priority")?;
        assert_eq!(get_str(router, "rule")?, rule);
        assert_eq!(get_str(router, "middlewares")?, middlewares[0]);
        assert_eq!(get_str(router, "service")?, service);
        let lb = labels_to_value(
            &labels,
            &format!("traefik.http.services.{service}.loadbalancer"),
        )?;
        let file_sticky = file_pod_sticky("file/flat-routers.yml", service)?;
        assert_eq!(lb["sticky"], file_sticky, "{service}");
    }

    let command = compose["services"]["traefik"]["command"]
        .as_array()
        .context("command")?;
    assert!(command.contains(&json!(format!(
        "--experimental.localPlugins.{ALIAS}.moduleName={MODULE}"
    ))));
    Ok(())
}

#[test]
fn labels_decode_like_traefik() -> Result<()> {
    let labels: BTreeMap<String, String> = [
        ("t.p.seed", "s"),
        ("t.p.variants[0].name", "v1"),
        ("t.p.variants[1].name", "v2"),
        ("t.p.variants[1].weight", "10"),
        ("t.p.cookie.name", "c"),
        ("t.other", "x"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(
        labels_to_value(&labels, "t.p")?,
        json!({"seed": "s", "variants": [{"name": "v1"}, {"name": "v2", "weight": "10"}], "cookie": {"name": "c"}})
    );
    Ok(())
}

/// A benchmark configuration (`harness/test-support/configs/NAME.json`), as JSON
/// with native types.
fn bench_config(name: &str) -> Result<Value> {
    let path = crate::support::traefik::repo_root()
        .join("harness/test-support/configs")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    serde_json::from_str(&text).with_context(|| path.display().to_string())
}

/// `value` as Traefik hands it to the plugin (every scalar a string), as
/// the YAML reader gives a configuration.
fn as_traefik(value: &Value) -> Result<Value> {
    Ok(cohort_harness::traefik::stringify_config(value)?)
}

#[test]
fn the_benchmarks_run_the_recipe_and_the_manifests_test_data() -> Result<()> {
    // "recipe" is the minimal recipe's Cohort configuration, "testdata"
    // the manifest's `testData`, exactly.
    let minimal = bench_config("recipe")?;
    assert_eq!(
        as_traefik(&minimal)?,
        cohort_value(&recipe("file/flat-routers.yml")?, "cohort")?
    );
    // The manifest's `summary` is a block scalar, which the YAML reader
    // does not read: `testData` and what follows it are read alone.
    let (_, test_data) = cohort_harness::package::MANIFEST
        .split_once("\ntestData:")
        .context("the manifest has a testData section")?;
    let manifest = yaml::parse(&format!("testData:{test_data}"))?;
    assert_eq!(
        as_traefik(&bench_config("testdata")?)?,
        *get(&manifest, "testData")?
    );
    // "full" and "reevaluate" are the recipe with what their names say.
    let mut full = bench_config("full")?;
    let map = full.as_object_mut().context("full is a map")?;
    assert!(map.remove("override").is_some() && map.remove("exclude").is_some());
    assert_eq!(full, minimal);
    let mut reevaluate = bench_config("reevaluate")?;
    assert_eq!(reevaluate["stickiness"], "reevaluate");
    reevaluate["stickiness"] = json!("keep");
    assert_eq!(reevaluate, minimal);
    // And each is a valid configuration.
    for name in ["recipe", "testdata", "full", "reevaluate"] {
        validated(&as_traefik(&bench_config(name)?)?, name)?;
    }
    Ok(())
}
