//! Finding the Kubernetes binaries a cluster runs (`--bin-dir`, PATH, the cache) and checking
//! that each is of the spec's version.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use frankenetes_spec::KubernetesVersion;

use super::{Arch, Binary, Cache, Error};

/// How long `<binary> --version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a binary was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// The directory the user named (`--bin-dir`).
    BinDir,
    /// A directory of `PATH`.
    Path,
    /// The binary cache ([`fetch`](super::fetch())).
    Cache,
}

/// A binary of the wanted version, found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Located {
    /// The binary.
    pub binary: Binary,
    /// Its path.
    pub path: PathBuf,
    /// Its version (the wanted one).
    pub version: KubernetesVersion,
    /// Where it was found.
    pub origin: Origin,
    /// Candidates found earlier in the search and passed over, with why (`Kubernetes v1.34.2`),
    /// so that a caller can say that a binary in PATH was not used.
    pub passed_over: Vec<(PathBuf, String)>,
}

/// Where [`locate`] looks: `bin_dir`, then each `path` directory, then the cache.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Search {
    /// The user's binary directory (`--bin-dir`): a binary there must be of the wanted version.
    pub bin_dir: Option<PathBuf>,
    /// The directories of `PATH`, in order: a binary of another version there is passed over.
    pub path: Vec<PathBuf>,
    /// The binary cache, if any.
    pub cache: Option<Cache>,
    /// The cache's architecture (`None`: the cache is not searched).
    pub arch: Option<Arch>,
}

impl Search {
    /// `bin_dir`, this process's `PATH`, then `cache` for this machine's architecture.
    pub fn new(bin_dir: Option<&Path>, cache: &Cache) -> Search {
        Search {
            bin_dir: bin_dir.map(Path::to_path_buf),
            path: std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).collect())
                .unwrap_or_default(),
            cache: Some(cache.clone()),
            arch: Arch::host(),
        }
    }

    /// Finds every binary (see [`Search::locate_one`]). On failure the error is the first
    /// version problem, else one [`Error::NotFound`] naming every missing binary.
    pub fn locate(
        &self,
        binaries: &[Binary],
        version: &KubernetesVersion,
    ) -> Result<Vec<Located>, Error> {
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for &binary in binaries {
            match self.locate_one(binary, version) {
                Ok(l) => found.push(l),
                Err(Error::NotFound { .. }) => missing.push(binary),
                Err(e) => return Err(e),
            }
        }
        if missing.is_empty() {
            Ok(found)
        } else {
            Err(self.not_found(missing, version))
        }
    }

    /// Finds `binary` of `version`: in `bin_dir` (where another version is an error), then
    /// the first of `PATH` of that version, then the cache (a verified entry of that version).
    /// A binary in PATH of another version is passed over when the cache has the right one, and
    /// is the error ([`Error::VersionMismatch`]) when it does not.
    pub fn locate_one(
        &self,
        binary: Binary,
        version: &KubernetesVersion,
    ) -> Result<Located, Error> {
        let located = |path: PathBuf, origin, passed_over| Located {
            binary,
            path,
            version: version.clone(),
            origin,
            passed_over,
        };
        if let Some(dir) = &self.bin_dir {
            let path = dir.join(binary.name());
            if is_executable(&path) {
                let found = binary_version(&path)?;
                if &found != version {
                    return Err(mismatch(binary, path, found, version));
                }
                return Ok(located(path, Origin::BinDir, Vec::new()));
            }
        }
        let mut passed_over: Vec<(PathBuf, String)> = Vec::new();
        let mut first_problem: Option<Error> = None;
        for dir in &self.path {
            let path = dir.join(binary.name());
            if !is_executable(&path) || self.bin_dir.as_ref().is_some_and(|b| b == dir) {
                continue;
            }
            match binary_version(&path) {
                Ok(found) if &found == version => {
                    return Ok(located(path, Origin::Path, passed_over));
                }
                Ok(found) => {
                    passed_over.push((path.clone(), format!("Kubernetes {found}")));
                    first_problem.get_or_insert_with(|| mismatch(binary, path, found, version));
                }
                Err(e) => {
                    passed_over.push((path, e.to_string()));
                    first_problem.get_or_insert(e);
                }
            }
        }
        if let (Some(cache), Some(arch)) = (&self.cache, self.arch)
            && cache.verified(binary, version, arch)?.is_some()
        {
            let path = cache.path(binary, version, arch);
            let found = binary_version(&path)?;
            if &found != version {
                return Err(mismatch(binary, path, found, version));
            }
            return Ok(located(path, Origin::Cache, passed_over));
        }
        Err(first_problem.unwrap_or_else(|| self.not_found(vec![binary], version)))
    }

    fn not_found(&self, binaries: Vec<Binary>, version: &KubernetesVersion) -> Error {
        let mut places = Vec::new();
        if let Some(d) = &self.bin_dir {
            places.push(format!("--bin-dir {}", d.display()));
        }
        places.push("PATH".to_owned());
        if let (Some(c), Some(arch)) = (&self.cache, self.arch) {
            places.push(format!("the cache ({})", c.dir(version, arch).display()));
        }
        let searched = match places.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => places.join(""),
        };
        Error::NotFound {
            binaries,
            version: version.clone(),
            searched,
        }
    }
}

fn mismatch(
    binary: Binary,
    path: PathBuf,
    found: KubernetesVersion,
    wanted: &KubernetesVersion,
) -> Error {
    Error::VersionMismatch {
        binary,
        path,
        found,
        wanted: wanted.clone(),
    }
}

/// Finds `binaries` of `version` in `bin_dir`, then `PATH`, then `cache` (this machine's
/// architecture): [`Search::new`] then [`Search::locate`].
pub fn locate(
    binaries: &[Binary],
    version: &KubernetesVersion,
    bin_dir: Option<&Path>,
    cache: &Cache,
) -> Result<Vec<Located>, Error> {
    Search::new(bin_dir, cache).locate(binaries, version)
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The Kubernetes version of a binary: `<bin> --version` (`Kubernetes v1.35.0`), or for
/// kubectl, which has no `--version`, `<bin> version --client` (`Client Version: v1.35.0`).
/// Gives up after 10 s.
pub fn binary_version(path: &Path) -> Result<KubernetesVersion, Error> {
    let first = run(path, &["--version"])?;
    if let Some(v) = parse_version(&first) {
        return Ok(v);
    }
    if let Ok(out) = run(path, &["version", "--client"])
        && let Some(v) = parse_version(&out)
    {
        return Ok(v);
    }
    Err(Error::VersionOutput {
        path: path.to_owned(),
        args: "--version".to_owned(),
        output: first.chars().take(200).collect(),
    })
}

fn parse_version(output: &str) -> Option<KubernetesVersion> {
    output.lines().find_map(|line| {
        let line = line.trim();
        let rest = line
            .strip_prefix("Kubernetes ")
            .or_else(|| line.strip_prefix("Client Version: "))?;
        rest.trim().parse().ok()
    })
}

/// Runs `path args` with no input; its stdout and stderr, whatever its exit status.
fn run(path: &Path, args: &[&str]) -> Result<String, Error> {
    let fail = |cause: String| Error::Run {
        path: path.to_owned(),
        args: args.join(" "),
        cause,
    };
    let mut child = spawn(path, args).map_err(|e| fail(e.to_string()))?;
    let readers = [
        child.stdout.take().map(|s| reader(Box::new(s))),
        child.stderr.take().map(|s| reader(Box::new(s))),
    ];
    let deadline = Instant::now() + VERSION_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "no answer within {}s; it was stopped",
                    VERSION_TIMEOUT.as_secs()
                )));
            }
            Err(e) => return Err(fail(e.to_string())),
        }
    }
    let mut out = String::new();
    for r in readers.into_iter().flatten() {
        out.push_str(&r.join().unwrap_or_default());
    }
    Ok(out)
}

/// Spawns, retrying while the file is busy: a binary that was just written can be held open
/// for writing for an instant by a concurrent fork of this process (ETXTBSY).
fn spawn(path: &Path, args: &[&str]) -> std::io::Result<std::process::Child> {
    let mut tries = 0;
    loop {
        let r = Command::new(path)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        match r {
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ETXTBSY as i32) && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            r => return r,
        }
    }
}

fn reader(mut r: Box<dyn Read + Send>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.by_ref().take(64 * 1024).read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_lines() {
        let v = |s: &str| parse_version(s).map(|v| v.to_string());
        assert_eq!(v("Kubernetes v1.35.0\n").as_deref(), Some("v1.35.0"));
        assert_eq!(
            v("Client Version: v1.32.4-dispatcher\nKustomize Version: v5.5.0\n").as_deref(),
            Some("v1.32.4-dispatcher")
        );
        assert_eq!(v("error: unknown flag: --version\n"), None);
        assert_eq!(v("Kubernetes vX"), None);
    }
}
