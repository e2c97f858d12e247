//! The C boundary: Mosquitto's plugin entry points and event callbacks. The only file of the crate with
//! `unsafe` (besides the generated [`super::sys`]).
//!
//! Every entry point and callback here
//! * runs its body inside `guard`, which catches a panic, logs it at ERR and answers with a fail-closed
//!   value (deny, refuse, defer on reload), so that no panic unwinds into C;
//! * checks every pointer it is given for NULL before use;
//! * reads strings as borrowed `&CStr` / `&str` that live only for the call (`BrokerClient`, `c_text`);
//!   whatever must outlive the call (the options) is copied by the safe layer.
//!
//! # How the broker's functions are reached
//! The `mosquitto_*` helpers (`mosquitto_log_printf`, `mosquitto_client_id`, ...) exist only inside the
//! `mosquitto` executable, which exports them dynamically. This crate is also an rlib linked into the
//! `mqtt-policy` program and into test binaries, where those symbols do not exist; a direct reference
//! would make those links fail (or need `--unresolved-symbols` tricks that also hide real mistakes).
//! So nothing here refers to a broker symbol at link time: `BrokerApi::resolve` looks each one up once,
//! in `mosquitto_plugin_init`, with `dlsym(RTLD_DEFAULT, name)`, which searches the executable's exported
//! symbols. The consequences:
//! * the `.so`, the program and the tests link with no undefined `mosquitto_*` symbol at all
//!   (`nm -u target/release/libmqtt_policy.so | grep mosquitto` is empty), so the plugin loads in any
//!   2.0.x broker and never pulls a 2.1-only function such as `mosquitto_plugin_set_info`;
//! * a broker that lacks one of the functions makes init fail with a message naming it, instead of a
//!   `dlopen` error;
//! * the functions Mosquitto 2.1 added are optional: [`Optional21`] holds each as an `Option`, `None` on
//!   2.0, and is the one place to add another (a field, a line in `Optional21::resolve`, a `const _`
//!   check). Whether `mosquitto_plugin_set_info` is there also tells which release loaded us, and so
//!   whose `acl_file` semantics the plugin applies ([`Semantics`]);
//! * the function-pointer types are checked against bindgen's declarations of the headers at compile time
//!   (the `const _` items below), so a signature cannot drift from `mosquitto_broker.h`.

use std::ffi::{c_void, CStr, CString};
use std::marker::PhantomData;
use std::os::raw::{c_char, c_int};
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::OnceLock;

use super::callbacks::{access_from_code, Event, Plugin};
use super::host::{Client, Host, LogLevel, Text};
use super::memo::RawCheck;
use super::outcome::{return_code, Outcome};
use super::sys;
use crate::policy::Semantics;

mod backlog;

/// The plugin API version we implement.
const PLUGIN_VERSION: c_int = sys::MOSQ_PLUGIN_VERSION;

/// What the plugin tells a 2.1 broker about itself (`mosquitto_plugin_set_info`).
const PLUGIN_NAME: &CStr = c"mqtt-policy";
/// The crate's version, NUL-terminated.
const PLUGIN_RELEASE: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

type LogPrintf = unsafe extern "C" fn(c_int, *const c_char, ...);
type ClientString = unsafe extern "C" fn(*const sys::mosquitto) -> *const c_char;
type Register = unsafe extern "C" fn(
    *mut sys::mosquitto_plugin_id_t,
    c_int,
    sys::MOSQ_FUNC_generic_callback,
    *const c_void,
    *mut c_void,
) -> c_int;
type Unregister = unsafe extern "C" fn(
    *mut sys::mosquitto_plugin_id_t,
    c_int,
    sys::MOSQ_FUNC_generic_callback,
    *const c_void,
) -> c_int;
type Callback = unsafe extern "C" fn(c_int, *mut c_void, *mut c_void) -> c_int;
/// 2.1: `int mosquitto_plugin_set_info(mosquitto_plugin_id_t *, const char *name, const char *version)`.
type PluginSetInfo =
    unsafe extern "C" fn(*mut sys::mosquitto_plugin_id_t, *const c_char, *const c_char) -> c_int;
/// 2.1: `void mosquitto_complete_basic_auth(const char *clientid, int result)` (its
/// `include/mosquitto/broker.h`): answers a login that BASIC_AUTH delayed.
type CompleteBasicAuth = unsafe extern "C" fn(*const c_char, c_int);

// Compile-time checks that the types above are the headers' signatures. Constants are evaluated by the
// compiler and never emitted, so these create no reference to the symbols.
const _: LogPrintf = sys::mosquitto_log_printf;
const _: ClientString = sys::mosquitto_client_id;
const _: ClientString = sys::mosquitto_client_username;
const _: ClientString = sys::mosquitto_client_address;
const _: Register = sys::mosquitto_callback_register;
const _: Unregister = sys::mosquitto_callback_unregister;
const _: sys::MOSQ_FUNC_generic_callback = Some(on_reload as Callback);
// The 2.1 additions, checked against 2.1's headers when build.rs had them (MOSQUITTO_21_INCLUDE_DIR).
#[cfg(mosquitto_21_headers)]
const _: PluginSetInfo = super::sys::v21::mosquitto_plugin_set_info;
#[cfg(mosquitto_21_headers)]
const _: CompleteBasicAuth = super::sys::v21::mosquitto_complete_basic_auth;

/// The broker functions the plugin calls, found at run time (see the module documentation).
#[derive(Clone, Copy, Debug)]
struct BrokerApi {
    log_printf: LogPrintf,
    client_id: ClientString,
    client_username: ClientString,
    client_address: ClientString,
    callback_register: Register,
    callback_unregister: Unregister,
    /// What Mosquitto 2.1 added; every field `None` on 2.0.
    v21: Optional21,
}

/// The functions Mosquitto 2.1 added that the plugin uses when they exist. Never called on 2.0 (they
/// are `None` there), so no 2.1-only behaviour or return code reaches a 2.0 broker.
#[derive(Clone, Copy, Debug, Default)]
struct Optional21 {
    plugin_set_info: Option<PluginSetInfo>,
    complete_basic_auth: Option<CompleteBasicAuth>,
}

impl Optional21 {
    /// Looks each function up; a missing one stays `None`.
    fn resolve() -> Optional21 {
        // SAFETY: each name is looked up as the function pointer type of its C signature, checked
        // against 2.1's header by the `const _` items above when the build had 2.1's headers.
        unsafe {
            Optional21 {
                plugin_set_info: optional::<PluginSetInfo>(c"mosquitto_plugin_set_info"),
                complete_basic_auth: optional::<CompleteBasicAuth>(
                    c"mosquitto_complete_basic_auth",
                ),
            }
        }
    }

    /// `true` in a Mosquitto 2.1 broker (it exports `mosquitto_plugin_set_info`, which 2.1 added).
    fn is_2_1(&self) -> bool {
        self.plugin_set_info.is_some()
    }

    /// The semantics of the broker's own `acl_file`: 2.1 when the broker has 2.1's functions.
    fn semantics(&self) -> Semantics {
        if self.is_2_1() {
            Semantics::Mosquitto21
        } else {
            Semantics::Mosquitto20
        }
    }
}

/// The broker's function `name` as an `F`, or `None` when the host process does not export it.
///
/// # Safety
/// `F` is an `unsafe extern "C" fn` type matching the C signature of the function called `name`.
unsafe fn optional<F: Copy>(name: &CStr) -> Option<F> {
    assert_eq!(
        std::mem::size_of::<F>(),
        std::mem::size_of::<*mut c_void>(),
        "a function pointer"
    );
    // SAFETY: `name` is NUL-terminated; dlsym with RTLD_DEFAULT has no other precondition.
    let address = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    if address.is_null() {
        return None;
    }
    // SAFETY: a non-NULL address of the function `name`, whose type `F` is (the caller's promise); the
    // sizes are equal (checked above).
    Some(unsafe { std::mem::transmute_copy::<*mut c_void, F>(&address) })
}

static BROKER: OnceLock<BrokerApi> = OnceLock::new();

impl BrokerApi {
    /// Looks up every function once; `Err` names the first one missing.
    fn resolve() -> Result<&'static BrokerApi, &'static str> {
        if let Some(api) = BROKER.get() {
            return Ok(api);
        }
        fn symbol(name: &'static CStr) -> Result<*mut c_void, &'static str> {
            // SAFETY: `name` is NUL-terminated; dlsym with RTLD_DEFAULT has no other precondition.
            let address = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
            if address.is_null() {
                Err(name.to_str().unwrap_or("a mosquitto function"))
            } else {
                Ok(address)
            }
        }
        // SAFETY: each address is the broker's function of that name; the pointer type it becomes is that
        // function's C signature, checked against the header by the `const _` items above.
        let api = unsafe {
            BrokerApi {
                log_printf: std::mem::transmute::<*mut c_void, LogPrintf>(symbol(
                    c"mosquitto_log_printf",
                )?),
                client_id: std::mem::transmute::<*mut c_void, ClientString>(symbol(
                    c"mosquitto_client_id",
                )?),
                client_username: std::mem::transmute::<*mut c_void, ClientString>(symbol(
                    c"mosquitto_client_username",
                )?),
                client_address: std::mem::transmute::<*mut c_void, ClientString>(symbol(
                    c"mosquitto_client_address",
                )?),
                callback_register: std::mem::transmute::<*mut c_void, Register>(symbol(
                    c"mosquitto_callback_register",
                )?),
                callback_unregister: std::mem::transmute::<*mut c_void, Unregister>(symbol(
                    c"mosquitto_callback_unregister",
                )?),
                v21: Optional21::resolve(),
            }
        };
        Ok(BROKER.get_or_init(|| api))
    }
}

/// Mosquitto's log, through `mosquitto_log_printf(level, "%s", message)`.
struct BrokerLog(&'static BrokerApi);

impl Host for BrokerLog {
    fn log(&self, level: LogLevel, message: &str) {
        let message = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
        // SAFETY: the format is the constant "%s" and its one argument a NUL-terminated string that lives
        // until the call returns; user text is never the format.
        unsafe { (self.0.log_printf)(level.code(), c"%s".as_ptr(), message.as_ptr()) }
    }
}

/// Standard error, for the rare message that cannot go to the broker's log (its log function is missing).
struct Stderr;

impl Host for Stderr {
    fn log(&self, _level: LogLevel, message: &str) {
        eprintln!("{message}");
    }
}

/// The log to use outside a callback that already has one.
fn current_log() -> Box<dyn Host> {
    match BROKER.get() {
        Some(api) => Box::new(BrokerLog(api)),
        None => Box::new(Stderr),
    }
}

/// Runs `body`, turning a panic into `on_panic` and an ERR log line instead of unwinding into C.
///
/// `AssertUnwindSafe` is sound here: after a panic the plugin keeps only state that is whole either way
/// (the policy is swapped as one `Arc`; the withheld-delivery counts are bookkeeping).
fn guard<T>(entry: &'static str, on_panic: T, body: impl FnOnce() -> T) -> T {
    match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("a panic");
            // Logging allocates and calls C; a second panic must not escape either.
            let _ = panic::catch_unwind(AssertUnwindSafe(|| {
                current_log().log(
                    LogLevel::Err,
                    &format!("mqtt-policy: internal error in {entry}: {what}; failing closed"),
                );
            }));
            on_panic
        }
    }
}

/// Reads a C string for the duration of a call. No copy.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that stays valid and unchanged for `'a`.
unsafe fn c_text<'a>(p: *const c_char) -> Text<'a> {
    // SAFETY: the caller's promise, passed on.
    text_of(unsafe { c_bytes(p) })
}

/// Checks a C string's bytes as UTF-8 (`None`, a NULL pointer, is [`Text::Absent`]).
fn text_of(bytes: Option<&[u8]>) -> Text<'_> {
    let Some(bytes) = bytes else {
        return Text::Absent;
    };
    if bytes.is_ascii() {
        // The common case, on every ACL check: ASCII is a cheap word-at-a-time test, where `from_utf8`
        // costs several instructions a byte on short strings.
        // SAFETY: ASCII is valid UTF-8.
        Text::Utf8(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        Text::from_bytes(bytes)
    }
}

/// The bytes of a C string borrowed for `'a`, or `None` for NULL.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that stays valid and unchanged for `'a`.
unsafe fn c_bytes<'a>(p: *const c_char) -> Option<&'a [u8]> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-NULL, and the caller promises a valid string for 'a.
    Some(unsafe { CStr::from_ptr(p) }.to_bytes())
}

/// A client the broker passed to a callback, valid for that callback only (`'call`).
struct BrokerClient<'call> {
    api: &'static BrokerApi,
    client: NonNull<sys::mosquitto>,
    _call: PhantomData<&'call sys::mosquitto>,
}

impl BrokerClient<'_> {
    fn new(api: &'static BrokerApi, client: *mut sys::mosquitto) -> Option<Self> {
        Some(BrokerClient {
            api,
            client: NonNull::new(client)?,
            _call: PhantomData,
        })
    }

    /// The bytes of one of the client's strings, unchecked (`None` for NULL).
    fn bytes(&self, helper: ClientString) -> Option<&[u8]> {
        // SAFETY: as in `string`.
        unsafe { c_bytes(helper(self.client.as_ptr())) }
    }

    fn string(&self, helper: ClientString) -> Text<'_> {
        // SAFETY: `client` is the non-NULL client of the current callback. The helpers return NULL or a
        // string the client owns, which the broker does not change while our callback runs; the result
        // borrows `self`, which does not outlive the callback.
        unsafe { c_text(helper(self.client.as_ptr())) }
    }
}

impl Client for BrokerClient<'_> {
    fn username(&self) -> Text<'_> {
        self.string(self.api.client_username)
    }
    fn id(&self) -> Text<'_> {
        self.string(self.api.client_id)
    }
    fn address(&self) -> Text<'_> {
        self.string(self.api.client_address)
    }
}

/// One plugin instance: what `userdata` points to between init and cleanup.
struct Instance {
    /// The broker's identifier for this instance; owned by the broker and valid until cleanup, which is
    /// exactly as long as we keep it (to unregister).
    id: NonNull<sys::mosquitto_plugin_id_t>,
    plugin: Plugin,
    /// The events registered, to unregister exactly these in cleanup.
    registered: Vec<Event>,
}

/// The callback function for each event: the one table walked by init (register) and cleanup
/// (unregister).
fn callback_for(event: Event) -> Callback {
    match event {
        Event::Reload => on_reload,
        Event::AclCheck => on_acl_check,
        Event::BasicAuth => on_basic_auth,
        Event::Disconnect => on_disconnect,
        Event::Tick => on_tick,
    }
}

/// `int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)`: 5 if the
/// broker offers version 5, else -1 (the broker then refuses the plugin).
///
/// # Safety
/// `supported_versions` is NULL or points to `supported_version_count` ints.
#[no_mangle]
pub unsafe extern "C" fn mosquitto_plugin_version(
    supported_version_count: c_int,
    supported_versions: *const c_int,
) -> c_int {
    guard("mosquitto_plugin_version", -1, || {
        let count = usize::try_from(supported_version_count).unwrap_or(0);
        if supported_versions.is_null() || count == 0 {
            return -1;
        }
        // SAFETY: non-NULL, and the broker passes `count` ints.
        let offered = unsafe { std::slice::from_raw_parts(supported_versions, count) };
        if offered.contains(&PLUGIN_VERSION) {
            PLUGIN_VERSION
        } else {
            refuse_plugin_api(offered);
            -1
        }
    })
}

/// The message for a broker whose plugin API versions are `offered`, none of them 5.
fn plugin_api_refusal(offered: &[c_int]) -> String {
    let versions: Vec<String> = offered.iter().map(c_int::to_string).collect();
    format!(
        "mqtt-policy: this broker offers plugin API version {} and the plugin needs version \
         {PLUGIN_VERSION} (Mosquitto 2.0 or later); refusing to load",
        versions.join(", ")
    )
}

/// Says, in the broker's log if it has one (else on standard error), why a broker without plugin API
/// version 5 cannot load us.
fn refuse_plugin_api(offered: &[c_int]) {
    let message = plugin_api_refusal(offered);
    // SAFETY: looked up as the type of the C function `mosquitto_log_printf`, which every broker with
    // plugins (1.x included) exports with this signature.
    match unsafe { optional::<LogPrintf>(c"mosquitto_log_printf") } {
        Some(log_printf) => {
            let message = CString::new(message).unwrap_or_default();
            // SAFETY: the format is the constant "%s" and its argument a NUL-terminated string.
            unsafe { log_printf(LogLevel::Err.code(), c"%s".as_ptr(), message.as_ptr()) }
        }
        None => eprintln!("{message}"),
    }
}

/// `int mosquitto_plugin_init(mosquitto_plugin_id_t *, void **userdata, struct mosquitto_opt *, int)`:
/// reads the options and files, registers the callbacks. Non-zero (after an ERR log line naming the
/// option, file and line) makes the broker refuse to start.
///
/// # Safety
/// The broker's contract: `identifier` and `userdata` valid, `options` NULL or `option_count` entries.
#[no_mangle]
pub unsafe extern "C" fn mosquitto_plugin_init(
    identifier: *mut sys::mosquitto_plugin_id_t,
    userdata: *mut *mut c_void,
    options: *mut sys::mosquitto_opt,
    option_count: c_int,
) -> c_int {
    return_code(guard("mosquitto_plugin_init", Outcome::Unavailable, || {
        let api = match BrokerApi::resolve() {
            Ok(api) => api,
            Err(missing) => {
                Stderr.log(
                    LogLevel::Err,
                    &format!(
                        "mqtt-policy: the host process does not export {missing}: \
                         this plugin must be loaded by Mosquitto 2.0 or later"
                    ),
                );
                return Outcome::Unavailable;
            }
        };
        let host = BrokerLog(api);
        let Some(id) = NonNull::new(identifier) else {
            host.log(
                LogLevel::Err,
                "mqtt-policy: init called without an identifier",
            );
            return Outcome::Unavailable;
        };
        if userdata.is_null() {
            host.log(LogLevel::Err, "mqtt-policy: init called without userdata");
            return Outcome::Unavailable;
        }
        if let Some(set_info) = api.v21.plugin_set_info {
            // SAFETY: `id` is the broker's identifier; both strings are NUL-terminated constants,
            // which outlive the broker's copy (it duplicates them).
            let rc = unsafe {
                set_info(
                    id.as_ptr(),
                    PLUGIN_NAME.as_ptr(),
                    PLUGIN_RELEASE.as_ptr().cast(),
                )
            };
            if rc != sys::MOSQ_ERR_SUCCESS {
                host.log(
                    LogLevel::Warning,
                    &format!("mqtt-policy: mosquitto_plugin_set_info returned {rc}"),
                );
            }
        }
        // SAFETY: the broker passes `option_count` options that stay valid during init; `Plugin::start`
        // copies what it keeps.
        let pairs = unsafe { option_pairs(options, option_count) };
        let mut plugin = match Plugin::start_as(pairs, &host, api.v21.semantics()) {
            Ok(plugin) => plugin,
            Err(outcome) => return outcome,
        };
        if api.v21.complete_basic_auth.is_some() {
            // Mosquitto 2.1: password checks on worker threads, answered from the TICK callback.
            plugin.enable_delayed_auth(&host);
        }
        let events = plugin.events();
        let instance = Box::into_raw(Box::new(Instance {
            id,
            plugin,
            registered: Vec::new(),
        }));
        for event in events {
            // SAFETY: `id` is the broker's identifier; the callback is a function of the right type;
            // `instance` stays allocated until cleanup unregisters every callback that uses it.
            let rc = unsafe {
                (api.callback_register)(
                    id.as_ptr(),
                    event.code(),
                    Some(callback_for(event)),
                    std::ptr::null(),
                    instance.cast(),
                )
            };
            if rc != sys::MOSQ_ERR_SUCCESS {
                host.log(
                    LogLevel::Err,
                    &format!(
                        "mqtt-policy: cannot register for {} (mosquitto_callback_register returned {rc}{}); \
                         the plugin refuses to start",
                        event.name(),
                        if rc == sys::MOSQ_ERR_ALREADY_EXISTS {
                            ": is the plugin loaded twice for the same listener?"
                        } else {
                            ""
                        }
                    ),
                );
                // SAFETY: `instance` came from Box::into_raw above and the broker has not been given it
                // beyond the callbacks `unregister_all` now removes.
                let instance = unsafe { Box::from_raw(instance) };
                unregister_all(api, &host, &instance);
                return Outcome::Unavailable;
            }
            // SAFETY: `instance` is valid and only this function uses it during init.
            unsafe { (*instance).registered.push(event) };
        }
        // SAFETY: checked non-NULL above.
        unsafe { *userdata = instance.cast() };
        Outcome::Allow
    }))
}

/// Reads the options for the duration of init; an unreadable pair is `None` (the safe layer reports it).
///
/// # Safety
/// `options` is NULL or points to `count` entries whose strings stay valid for `'a`.
unsafe fn option_pairs<'a>(
    options: *const sys::mosquitto_opt,
    count: c_int,
) -> Vec<Option<(&'a str, &'a str)>> {
    let count = usize::try_from(count).unwrap_or(0);
    if options.is_null() {
        return vec![None; count];
    }
    // SAFETY: non-NULL, `count` entries (the caller's promise).
    let options = unsafe { std::slice::from_raw_parts(options, count) };
    options
        .iter()
        .map(|option| {
            // SAFETY: NULL or valid NUL-terminated strings for 'a (the caller's promise).
            let (key, value) = unsafe { (c_text(option.key), c_text(option.value)) };
            match (key, value) {
                (Text::Utf8(key), Text::Utf8(value)) => Some((key, value)),
                _ => None,
            }
        })
        .collect()
}

/// Unregisters every callback `instance` registered, logging any failure. `true` if all went well.
fn unregister_all(api: &BrokerApi, host: &dyn Host, instance: &Instance) -> bool {
    let mut all = true;
    for &event in instance.registered.iter().rev() {
        // SAFETY: the identifier and callback are exactly those given to mosquitto_callback_register.
        let rc = unsafe {
            (api.callback_unregister)(
                instance.id.as_ptr(),
                event.code(),
                Some(callback_for(event)),
                std::ptr::null(),
            )
        };
        if rc != sys::MOSQ_ERR_SUCCESS {
            all = false;
            host.log(
                LogLevel::Warning,
                &format!(
                    "mqtt-policy: mosquitto_callback_unregister({}) returned {rc}",
                    event.name()
                ),
            );
        }
    }
    all
}

/// `int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *, int)`: unregisters what init
/// registered and frees the instance.
///
/// # Safety
/// `userdata` is NULL or the value init stored, not used again afterwards.
#[no_mangle]
pub unsafe extern "C" fn mosquitto_plugin_cleanup(
    userdata: *mut c_void,
    _options: *mut sys::mosquitto_opt,
    _option_count: c_int,
) -> c_int {
    return_code(guard(
        "mosquitto_plugin_cleanup",
        Outcome::Unavailable,
        || {
            if userdata.is_null() {
                return Outcome::Allow;
            }
            // SAFETY: init stored a `Box<Instance>` here; the broker hands it back exactly once.
            let instance = unsafe { Box::from_raw(userdata.cast::<Instance>()) };
            let Some(api) = BROKER.get() else {
                return Outcome::Unavailable;
            };
            if unregister_all(api, &BrokerLog(api), &instance) {
                Outcome::Allow
            } else {
                Outcome::Unavailable
            }
        },
    ))
}

/// The common frame of every event callback: checks the event number and the pointers, then runs `body`
/// with the instance's plugin and the broker log, inside `guard`.
///
/// # Safety
/// `userdata` is NULL or the `Instance` registered with this callback.
unsafe fn dispatch(
    entry: &'static str,
    expected: Event,
    fail: Outcome,
    event: c_int,
    userdata: *mut c_void,
    body: impl FnOnce(&Plugin, &BrokerLog, &'static BrokerApi) -> Outcome,
) -> c_int {
    return_code(guard(entry, fail, || {
        let Some(api) = BROKER.get() else {
            return fail;
        };
        let host = BrokerLog(api);
        if event != expected.code() {
            host.log(
                LogLevel::Err,
                &format!(
                    "mqtt-policy: {entry} called for event {event}, expected {}",
                    expected.name()
                ),
            );
            return fail;
        }
        // SAFETY: registered with a pointer to a live `Instance` (the caller's promise); shared access
        // only, and the broker runs callbacks one at a time on its thread.
        let Some(instance) = (unsafe { userdata.cast::<Instance>().as_ref() }) else {
            host.log(
                LogLevel::Err,
                &format!("mqtt-policy: {entry} called without userdata"),
            );
            return fail;
        };
        body(&instance.plugin, &host, api)
    }))
}

/// `MOSQ_EVT_ACL_CHECK`. Fails closed (ACL_DENIED).
unsafe extern "C" fn on_acl_check(
    event: c_int,
    event_data: *mut c_void,
    userdata: *mut c_void,
) -> c_int {
    let fail = Outcome::DenyAccess;
    let body = |plugin: &Plugin, host: &BrokerLog, api: &'static BrokerApi| {
        // SAFETY: for MOSQ_EVT_ACL_CHECK the broker passes a `mosquitto_evt_acl_check` valid for the call.
        let Some(data) = (unsafe { event_data.cast::<sys::mosquitto_evt_acl_check>().as_ref() })
        else {
            return fail;
        };
        let Some(client) = BrokerClient::new(api, data.client) else {
            return fail;
        };
        // SAFETY: the topic is NULL or a string valid for the call.
        let topic_bytes = unsafe { c_bytes(data.topic) };
        // The fast path: a read or write allowed before, compared as bytes (see `memo`).
        if let (Some(access), Some(client_id), Some(topic)) = (
            access_from_code(data.access),
            client.bytes(api.client_id),
            topic_bytes,
        ) {
            let check = RawCheck {
                username: client.bytes(api.client_username),
                client_id,
                topic,
                access,
            };
            if plugin.remembered(&check) {
                return Outcome::Allow;
            }
        }
        plugin.acl_check(host, &client, text_of(topic_bytes), data.access)
    };
    // SAFETY: the broker passes the userdata registered with this callback.
    unsafe { dispatch("acl_check", Event::AclCheck, fail, event, userdata, body) }
}

/// `MOSQ_EVT_BASIC_AUTH`. Fails closed (AUTH).
unsafe extern "C" fn on_basic_auth(
    event: c_int,
    event_data: *mut c_void,
    userdata: *mut c_void,
) -> c_int {
    let fail = Outcome::RefuseLogin;
    let body = |plugin: &Plugin, host: &BrokerLog, api: &'static BrokerApi| {
        // SAFETY: for MOSQ_EVT_BASIC_AUTH the broker passes a `mosquitto_evt_basic_auth` valid for the
        // call.
        let Some(data) = (unsafe { event_data.cast::<sys::mosquitto_evt_basic_auth>().as_ref() })
        else {
            return fail;
        };
        let Some(client) = BrokerClient::new(api, data.client) else {
            return fail;
        };
        // SAFETY: username and password are NULL or strings valid for the call.
        let username = unsafe { c_text(data.username) };
        // SAFETY: as above.
        // The password is a C string: bytes after an embedded NUL are not seen, as in Mosquitto's own
        // check. It is borrowed for the call and never copied.
        let password = match unsafe { c_text(data.password) } {
            Text::Absent => None,
            Text::Utf8(p) => Some(p.as_bytes()),
            Text::NotUtf8(p) => Some(p),
        };
        plugin.basic_auth(host, &client, username, password)
    };
    // SAFETY: the broker passes the userdata registered with this callback.
    unsafe { dispatch("basic_auth", Event::BasicAuth, fail, event, userdata, body) }
}

/// `MOSQ_EVT_RELOAD`. DEFER on 2.0, SUCCESS on 2.1, whatever happened, even on a panic (see
/// [`Plugin::reload`] and [`reload_answer`]).
unsafe extern "C" fn on_reload(
    event: c_int,
    _event_data: *mut c_void,
    userdata: *mut c_void,
) -> c_int {
    let answer = reload_answer();
    let body = move |plugin: &Plugin, host: &BrokerLog, _: &'static BrokerApi| {
        plugin.reload(host);
        answer
    };
    // SAFETY: the broker passes the userdata registered with this callback.
    unsafe { dispatch("reload", Event::Reload, answer, event, userdata, body) }
}

/// What a reload callback answers. 2.0 wants DEFER (any other answer stops the chain, and an error stops
/// the broker reloading its own files); 2.1 treats every non-zero answer, DEFER included, as a failed
/// reload and shuts the broker down, so there it is SUCCESS. A failed reload of our files is logged and
/// keeps the previous policy either way.
fn reload_answer() -> Outcome {
    match BROKER.get() {
        Some(api) if api.v21.is_2_1() => Outcome::Allow,
        _ => Outcome::Defer,
    }
}

/// `MOSQ_EVT_TICK`: the first one raises the listeners' backlog (`plugin_opt_listen_backlog`, see
/// [`backlog`]); on Mosquitto 2.1 every one gives the broker the verdicts of delayed logins, on its own
/// thread as `mosquitto_complete_basic_auth` requires. The broker ignores the answer.
unsafe extern "C" fn on_tick(
    event: c_int,
    event_data: *mut c_void,
    userdata: *mut c_void,
) -> c_int {
    let fail = Outcome::Allow;
    let body = |plugin: &Plugin, host: &BrokerLog, api: &'static BrokerApi| {
        report_backlog(
            backlog::raise_once(plugin.options().listen_backlog),
            plugin.options().listen_backlog,
            host,
        );
        let (Some(complete), true) = (api.v21.complete_basic_auth, plugin.delays_logins()) else {
            return Outcome::Allow;
        };
        let (completions, waiting) = plugin.tick(host);
        // SAFETY: for MOSQ_EVT_TICK the broker passes a `mosquitto_evt_tick` valid for the call.
        if let Some(data) = unsafe { event_data.cast::<sys::mosquitto_evt_tick>().as_mut() } {
            // 2.1 names this field `next_ms` (2.0's header: `next_ns`; same place and type): while
            // logins wait, tick again within 2 ms instead of whenever the broker next wakes up.
            data.next_ns = if waiting { 2 } else { 0 };
        }
        // No state of ours is borrowed here: the broker may call our other callbacks from within.
        for c in completions {
            // A client id came from a C string: it has no NUL.
            let Ok(id) = std::ffi::CString::new(c.client_id) else {
                continue;
            };
            // SAFETY: the broker's function, on the broker's thread (a callback), with a C string
            // valid for the call.
            unsafe { complete(id.as_ptr(), return_code(c.outcome)) };
        }
        Outcome::Allow
    };
    // SAFETY: the broker passes the userdata registered with this callback.
    unsafe { dispatch("tick", Event::Tick, fail, event, userdata, body) }
}

/// Logs what raising the listen backlog did, once.
fn report_backlog(raised: backlog::Raised, backlog: u32, host: &BrokerLog) {
    let message = match raised {
        backlog::Raised::Already => return,
        backlog::Raised::Sockets { raised, failed: 0 } => (
            LogLevel::Info,
            format!("mqtt-policy: listen backlog of {raised} listening socket(s) raised to {backlog} (plugin_opt_listen_backlog; Mosquitto's own is 100; 0 leaves it)"),
        ),
        backlog::Raised::Sockets { raised, failed } => (
            LogLevel::Warning,
            format!("mqtt-policy: listen backlog raised to {backlog} on {raised} listening socket(s), refused on {failed} (left at Mosquitto's 100)"),
        ),
        backlog::Raised::Unreadable(e) => (
            LogLevel::Warning,
            format!("mqtt-policy: cannot read /proc/self/fd ({e}): the listen backlog stays at Mosquitto's 100 (plugin_opt_listen_backlog)"),
        ),
    };
    host.log(message.0, &message.1);
}

/// `MOSQ_EVT_DISCONNECT`. The broker ignores the answer.
unsafe extern "C" fn on_disconnect(
    event: c_int,
    event_data: *mut c_void,
    userdata: *mut c_void,
) -> c_int {
    let fail = Outcome::Allow;
    let body = |plugin: &Plugin, host: &BrokerLog, api: &'static BrokerApi| {
        // SAFETY: for MOSQ_EVT_DISCONNECT the broker passes a `mosquitto_evt_disconnect` valid for the
        // call.
        let Some(data) = (unsafe { event_data.cast::<sys::mosquitto_evt_disconnect>().as_ref() })
        else {
            return fail;
        };
        match BrokerClient::new(api, data.client) {
            Some(client) => plugin.disconnect(host, &client),
            None => fail,
        }
    };
    // SAFETY: the broker passes the userdata registered with this callback.
    unsafe { dispatch("disconnect", Event::Disconnect, fail, event, userdata, body) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_turns_a_panic_into_the_fail_closed_answer() {
        assert_eq!(
            guard("test", Outcome::DenyAccess, || Outcome::Allow),
            Outcome::Allow
        );
        assert_eq!(
            guard("test", Outcome::DenyAccess, || -> Outcome {
                panic!("boom")
            }),
            Outcome::DenyAccess
        );
    }

    #[test]
    fn version_5_is_chosen_only_when_offered() {
        let offered = [5, 4, 3, 2];
        // SAFETY: a valid array of the stated length, or NULL with length 0.
        unsafe {
            assert_eq!(mosquitto_plugin_version(4, offered.as_ptr()), 5);
            assert_eq!(mosquitto_plugin_version(3, offered[1..].as_ptr()), -1);
            assert_eq!(mosquitto_plugin_version(0, std::ptr::null()), -1);
            assert_eq!(mosquitto_plugin_version(-1, offered.as_ptr()), -1);
        }
    }

    #[test]
    fn a_broker_without_api_5_is_told_which_versions_it_offered() {
        assert_eq!(
            plugin_api_refusal(&[4, 3, 2]),
            "mqtt-policy: this broker offers plugin API version 4, 3, 2 and the plugin needs version 5 \
             (Mosquitto 2.0 or later); refusing to load"
        );
    }

    #[test]
    fn cleanup_accepts_null_userdata() {
        // SAFETY: NULL userdata is what a broker passes when init stored nothing.
        let rc = unsafe { mosquitto_plugin_cleanup(std::ptr::null_mut(), std::ptr::null_mut(), 0) };
        assert_eq!(rc, sys::MOSQ_ERR_SUCCESS);
    }

    #[test]
    fn init_outside_a_broker_fails_with_a_message_instead_of_crashing() {
        let mut userdata = std::ptr::null_mut();
        // SAFETY: valid pointers; the test process exports no mosquitto_* symbols, so init must stop at
        // the symbol lookup.
        let rc = unsafe {
            mosquitto_plugin_init(
                NonNull::dangling().as_ptr(),
                &mut userdata,
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!(rc, sys::MOSQ_ERR_UNKNOWN);
        assert!(userdata.is_null());
    }
}
