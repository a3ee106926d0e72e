// setup/: `dustbox setup` (identity, passphrase-sealed key backup, folders, donated space, port,
// settings, the systemd user service or launchd agent, the .f desktop handler) and `dustbox doctor`.
// Main class: Setup.

export { Setup, parseDonate, sizeText, MIN_DONATE, DEFAULT_MAP_PORT, FAIR_EXCHANGE_LINE, type SetupOptions, type SetupResult } from './setup.js'
export { Doctor, formatReport, countDirectories, suggestedWatches, inotifyHint, type Check, type DoctorReport, type DoctorOptions } from './doctor.js'
export { SetupError, SetupCodes, type SetupCode } from './errors.js'
export { registerSetupCommands, type SetupCommandContext } from './commands.js'
export {
  sealKeyBackup, openKeyBackup, readKeyBackupFile, writeKeyBackupFile, passphraseBytes, readPassphraseFile,
  DEFAULT_KDF, DEFAULT_OPSLIMIT, DEFAULT_MEMLIMIT_KIB, MIN_PASSPHRASE_CHARS, KEY_BACKUP_FILE, type KdfParams
} from './key-backup.js'
export { encodeKeyBackup, decodeKeyBackup, encodeHeader, KEY_BACKUP_BYTES, KEY_BACKUP_MAGIC, KEY_BACKUP_VERSION, type KeyBackupFields } from './key-backup-format.js'
export { systemdUnitText, launchdPlistText, systemdQuote, installService, UNIT_NAME, LAUNCHD_LABEL, type ServiceSpec } from './service.js'
export { mimePackageText, desktopEntryText, desktopExecArg, mergeMimeapps, installDesktop, STUB_MIME, DESKTOP_ID } from './desktop.js'
export { checkFolder, completePath, parseMountinfo, mountFor, NETWORK_FS_TYPES } from './folders.js'
export { parsePortAnswer, bindProbe, checkPortsFree, DEFAULT_SETUP_PORT } from './ports.js'
export { userDirs, writeIfChanged } from './files.js'
