//! `reg /?` and `reg VERB /?`.

use super::args::Verb;

const OVERVIEW: &str = r#"
hivebox reg OPERATION [parameters]

  Operations:  QUERY | ADD | DELETE | COPY | COMPARE | RENAME | FLUSH |
               EXPORT | IMPORT | SAVE | RESTORE | LOAD | UNLOAD | REPLACE

  Return code (except COMPARE):  0 - successful   1 - failed

  For help on an operation:  hivebox reg OPERATION /?

  KEY is  [ROOT\]SUBKEY  with ROOT one of HKLM, HKCU, HKCR, HKU, HKCC (or their
  HKEY_* long forms), or a native \REGISTRY\... path. Switches are case-insensitive
  and take / or - (/v, -V); each has a GNU long form too (--value NAME).
  The registry lives in $HIVEBOX_HOME: served by `hivebox daemon` when one is
  running there (or at $HIVEBOX_SOCKET), else opened by the command itself.

Examples:
  hivebox reg query HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion
  hivebox reg add HKCU\Software\Contoso /v Port /t REG_DWORD /d 8080
"#;

const QUERY: &str = r#"
hivebox reg QUERY KEY [/v NAME | /ve] [/s] [/f PATTERN [/k] [/d] [/c] [/e]] [/t TYPE] [--json]

  /v NAME    --value NAME     query one value (with /s: in every subkey, counting matches)
  /ve        --default        query the default value, named (Default)
  /s         --recursive      all subkeys and values, recursively
  /f PATTERN --find PATTERN   search key names, value names and data; * and ? are wildcards
  /k         --keys-only      with /f: search key names only
  /d         --data-only      with /f: search data only
  /c         --case-sensitive with /f: match case
  /e         --exact          with /f: whole names or data only
  /t TYPE    --type TYPE      only values of this type (REG_SZ, REG_DWORD, ...)
             --json           print JSON instead of reg.exe's layout

Examples:
  hivebox reg query "HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion" /v ProductName
  hivebox reg query HKLM\SYSTEM\CurrentControlSet\Services /s /f Start /k
"#;

const ADD: &str = r#"
hivebox reg ADD KEY [/v NAME | /ve] [/t TYPE] [/s SEPARATOR] [/d DATA] [/f]

  Creates KEY (and every missing level above it) and, with /v, /ve or /d, sets a value.

  /v NAME    --value NAME     the value to set
  /ve        --default        the default value (also chosen by /d without /v)
  /t TYPE    --type TYPE      REG_SZ (default), REG_EXPAND_SZ, REG_MULTI_SZ, REG_DWORD,
                              REG_QWORD, REG_BINARY, REG_NONE, REG_DWORD_BIG_ENDIAN, ...
  /s SEP     --separator SEP  the separator of REG_MULTI_SZ items (default \0)
  /d DATA    --data DATA      the data: numbers in decimal or 0x hex, binary as hex digits
  /f         --force          overwrite an existing value without asking

Examples:
  hivebox reg add HKCU\Software\Contoso /v Name /d "Contoso Ltd"
  hivebox reg add HKCU\Software\Contoso /v Paths /t REG_MULTI_SZ /s ; /d "/usr;/opt"
"#;

const DELETE: &str = r#"
hivebox reg DELETE KEY [/v NAME | /ve | /va] [/f]

  Deletes KEY, or one value of it, or all its values. A key with subkeys is deleted
  only with /f, and then with its whole subtree.

  /v NAME    --value NAME     delete this value
  /ve        --default        delete the default value
  /va        --all-values     delete every value of the key
  /f         --force          delete the key with all its subkeys

Examples:
  hivebox reg delete HKCU\Software\Contoso /v Port
  hivebox reg delete HKCU\Software\Contoso /f
"#;

const COPY: &str = r#"
hivebox reg COPY SOURCE DESTINATION [/s] [/f]

  Copies the values of SOURCE (and with /s its subkeys) into DESTINATION, creating it.

  /s         --recursive      copy all subkeys and values
  /f         --force          overwrite existing values without asking

Example:
  hivebox reg copy HKLM\SOFTWARE\Contoso HKCU\Software\Contoso /s /f
"#;

const COMPARE: &str = r#"
hivebox reg COMPARE KEY1 KEY2 [/v NAME | /ve] [/s] [/oa | /od | /os | /on] [--json]

  /v NAME    --value NAME     compare this value only
  /ve        --default        compare the default value only
  /s         --recursive      compare all subkeys and values
  /oa                         output all differences and matches
  /od                         output only differences (default)
  /os                         output only matches
  /on                         output nothing but the result
             --output MODE    all, diff, same or none
             --json           print JSON

  Lines start with < (first key), > (second key) or = (the same in both).
  Return code:  0 - identical   1 - failed   2 - different

Example:
  hivebox reg compare HKLM\SOFTWARE\Contoso HKCU\Software\Contoso /s
"#;

const RENAME: &str = r#"
hivebox reg RENAME KEY NEWNAME

  Gives KEY a new name among its siblings (NEWNAME is one name, not a path).

Example:
  hivebox reg rename HKCU\Software\Contoso Fabrikam
"#;

const FLUSH: &str = r#"
hivebox reg FLUSH KEY

  Makes every change acknowledged so far durable in the store (which may checkpoint).

Example:
  hivebox reg flush HKLM
"#;

const EXPORT: &str = r#"
hivebox reg EXPORT KEY FILE [/y]

  Writes KEY and its whole subtree to FILE as a .reg file, as regedit exports it
  (UTF-16LE, "Windows Registry Editor Version 5.00").

  /y         --yes            overwrite an existing FILE without asking

Example:
  hivebox reg export HKCU\Software\Contoso contoso.reg /y
"#;

const IMPORT: &str = r#"
hivebox reg IMPORT FILE

  Applies a .reg file: [KEY] creates a key, [-KEY] deletes it with its subtree,
  "NAME"=DATA sets a value, "NAME"=- deletes one. Reads UTF-16 and UTF-8 files,
  version 5.00 and REGEDIT4. The whole file is checked first, then applied in one
  registry transaction: a file that does not parse or a change that fails changes
  nothing, and a file that applies commits all at once. Volatile keys cannot be
  changed by an import.

Example:
  hivebox reg import contoso.reg
"#;

const SAVE: &str = r#"
hivebox reg SAVE KEY FILE [/y]

  Writes KEY and its whole subtree to FILE as a registry hive file (regf, as
  Windows writes them; hivex, regipy and Windows read it). The file is written
  whole and renamed into place.

  /y         --yes            overwrite an existing FILE without asking

Example:
  hivebox reg save HKLM\SOFTWARE\Contoso contoso.hiv /y
"#;

const RESTORE: &str = r#"
hivebox reg RESTORE KEY FILE

  Replaces the values and subkeys of KEY (which must exist) with those of the hive
  FILE (KEY keeps its name). A dirty Windows hive is read with its .LOG1/.LOG2.
  Fails, changing nothing, while a key below KEY is open.

Example:
  hivebox reg restore HKLM\SOFTWARE\Contoso contoso.hiv
"#;

const LOAD: &str = r#"
hivebox reg LOAD KEY FILE

  Mounts the hive FILE at KEY, which must be directly below HKLM or HKU and must
  not exist. The hive stays mounted for every later command until UNLOAD.
  Changes are logged in FILE.wal and written into FILE (as a clean hive) on FLUSH
  and UNLOAD. A dirty Windows hive is read with its .LOG1/.LOG2 replayed.
  When a daemon serves the registry, it opens FILE (by its absolute name), as the
  daemon's user.

Example:
  hivebox reg load HKLM\OFFLINE /mnt/windows/System32/config/SOFTWARE
"#;

const UNLOAD: &str = r#"
hivebox reg UNLOAD KEY

  Unmounts the hive LOAD mounted at KEY: its changes are written into its file,
  FILE.wal is removed, and later commands no longer mount it.

Example:
  hivebox reg unload HKLM\OFFLINE
"#;

const REPLACE: &str = r#"
hivebox reg REPLACE KEY NEWFILE OLDFILE

  From the next command on, the hive file NEWFILE takes the place of the file of
  the hive holding KEY, and the hive's contents as they are then go to OLDFILE
  (a regf hive). No key changes now. The hive is a base hive (HKLM\SOFTWARE,
  ...), HKCU, or one LOAD mounted (replaced when it is next loaded, if it is
  unloaded meanwhile); a key below its root names the same hive. NEWFILE must be
  a valid hive (a dirty Windows hive is read with its .LOG1/.LOG2); OLDFILE must
  not exist. When a daemon serves the registry, the replacement takes place when
  the daemon next starts (or, for a LOAD-mounted hive, is next loaded).

Example:
  hivebox reg replace HKLM\OFFLINE contoso.hiv offline-old.hiv
"#;

/// The help text for the overview (`None`) or one verb.
pub fn text(verb: Option<Verb>) -> &'static str {
    match verb {
        None => OVERVIEW,
        Some(Verb::Query) => QUERY,
        Some(Verb::Add) => ADD,
        Some(Verb::Delete) => DELETE,
        Some(Verb::Copy) => COPY,
        Some(Verb::Compare) => COMPARE,
        Some(Verb::Rename) => RENAME,
        Some(Verb::Flush) => FLUSH,
        Some(Verb::Export) => EXPORT,
        Some(Verb::Import) => IMPORT,
        Some(Verb::Save) => SAVE,
        Some(Verb::Restore) => RESTORE,
        Some(Verb::Load) => LOAD,
        Some(Verb::Unload) => UNLOAD,
        Some(Verb::Replace) => REPLACE,
    }
}
