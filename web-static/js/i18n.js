/*
 * i18n.js — labels and formatting for the wall screen, the mayor's page and the login page.
 *
 * Bahasa Indonesia by default; English with ?lang=en. Every visible label comes
 * from the dictionary below. Numbers use Intl.NumberFormat ('id-ID': 1.234 and
 * 87,5%; 'en-US': 1,234 and 87.5%). Times are shown in the tenant's zone (WIB,
 * Asia/Jakarta, until the server names the tenant: I18n.setTenant).
 *
 * Exposes window.I18n:
 *   I18n.lang, I18n.locale
 *   I18n.t(key, vars)            label lookup, "{name}" placeholders filled from vars
 *   I18n.apply(root)             fills [data-i18n] elements, sets <html lang> and the title
 *   I18n.setTenant(t)            the tenant of GET /api/v1/session: its name and head in
 *                                the titles, its zone for every time; true if it changed
 *   I18n.fmt.int / pct / pct0 / pp / dec / clock / hm / hhmm / when / day / date
 *   I18n.tz.startOfDay(ms)       00:00 of the tenant's day holding ms
 *   I18n.category(key), I18n.level(key), I18n.role(key)
 *
 * To add a label: add the same key to both DICT.id and DICT.en, then use it as
 * data-i18n="key" in the HTML or I18n.t('key', {var}) in the scripts.
 */
(function () {
  'use strict';

  // The tenant's zone, its name in the page's clock, and its UTC offset.
  let TZ = 'Asia/Jakarta';
  let ZONE = 'WIB';
  let OFFSET_MS = 7 * 3600 * 1000;
  let tenant = null;

  const DICT = {
    id: {
      'wall.doctitle': 'Ruang Kendali — {name}',
      'wall.doctitle.bare': 'Ruang Kendali',
      'wall.heading': '{name} — Ruang Kendali',
      'wall.heading.bare': 'Ruang Kendali',
      'mayor.doctitle': 'Ringkasan {head} — {name}',
      'mayor.doctitle.bare': 'Ringkasan Kepala Daerah',
      'mayor.heading': '{name} — Ringkasan {head}',
      'mayor.heading.bare': 'Ringkasan Kepala Daerah',
      'lang.switch': 'English',
      'lang.switch.label': 'Ganti bahasa ke English',

      'hdr.updated': 'Pembaruan terakhir',
      'hdr.never': 'belum ada',

      'stale.title': 'DATA TIDAK MUTAKHIR — koneksi terputus',
      'stale.last': 'Pembaruan terakhir: {time}',
      'stale.never': 'Belum ada data dari server',
      'stale.retry': 'Menyambung ulang otomatis…',
      'stale.title.db': 'DATA TIDAK MUTAKHIR — basis data tidak terjangkau',
      'stale.db': 'Server tidak dapat menyimpan data baru; angka di layar adalah yang terakhir diketahui. Menyambung ulang otomatis…',

      'panel.calls': 'Pusat Panggilan',
      'calls.received_today': 'Masuk hari ini',
      'calls.waiting': 'Menunggu',
      'calls.active': 'Aktif',
      'calls.asa_1h_s': 'Rata-rata jawab',
      'calls.service_level_1h': 'Tingkat layanan',
      'calls.abandon_rate_1h': 'Terputus',
      'calls.by_category_today': 'Per kategori hari ini',
      'calls.none_today': 'Belum ada panggilan hari ini',
      'sub.1h': '1 jam terakhir',
      'sub.sl': '≤ 20 dtk, 1 jam',
      'unit.s': 'dtk',
      'unit.h': 'jam',

      'panel.reports': 'Laporan Warga',
      'reports.open': 'Terbuka',
      'reports.overdue': 'Lewat SLA',
      'reports.unassigned': 'Belum didisposisi',
      'reports.received_today': 'Masuk hari ini',
      'reports.resolved_today': 'Selesai hari ini',
      'reports.sla_met_30d': 'Tepat SLA',
      'reports.resolution_p50_30d_h': 'Median selesai',
      'sub.sla3d': '> 3 hari',
      'sub.30d': '30 hari',
      'reports.by_agency': 'OPD terbanyak lewat SLA',
      'reports.by_district_open': 'Terbuka per kecamatan',
      'col.agency': 'OPD',
      'col.overdue': 'Lewat SLA',
      'col.open': 'Terbuka',
      'col.sla': 'Tepat SLA 30 hr',
      'reports.no_agency': 'Tidak ada tiket pada OPD',
      'reports.no_district': 'Tidak ada laporan terbuka',

      'panel.sensors': 'Sensor',
      'sensors.none': 'Belum ada sensor terdaftar',
      'sensors.offline': 'Offline',
      'sensors.of_total': 'dari {n} sensor',

      'panel.alerts': 'Peringatan Aktif',
      'alerts.none': 'Tidak ada peringatan aktif',
      'alerts.more': '+{n} lainnya',
      'alerts.acked': 'Dikonfirmasi: {by}',
      'alerts.kind.level': 'Level',
      'alerts.kind.offline': 'Sensor offline',

      'alerts.acked_at': 'Dikonfirmasi {by} · {time}',
      'alerts.offline_msg': 'tidak ada data (offline)',
      'alerts.ack_hint': 'Sentuh untuk konfirmasi',
      'awas.banner': 'AWAS',
      'awas.more': '+{n} lainnya',

      'trend.calls': 'Panggilan masuk per jam · 24 jam',
      'trend.reports': 'Laporan masuk per jam · 24 jam',
      'chart.bars.aria': '{title}: total {total}; tertinggi {max} pada {time}. Batang terakhir adalah jam berjalan.',
      'chart.nodata': 'Data grafik tidak tersedia',
      'chart.now': 'sekarang',

      'ack.title': 'Konfirmasi peringatan',
      'ack.by': 'Nama operator',
      'ack.note': 'Catatan (opsional)',
      'ack.submit': 'Konfirmasi',
      'ack.cancel': 'Batal',
      'ack.close': 'Tutup',
      'ack.sending': 'Mengirim…',
      'ack.ok': 'Dikonfirmasi oleh {by} pukul {time}.',
      'ack.previous': 'Sudah dikonfirmasi {by} · {time}; konfirmasi baru menggantikannya.',
      'ack.err.by': 'Isi nama operator (maksimal 64 byte).',
      'ack.err.note': 'Catatan terlalu panjang (maksimal 200 byte).',
      'ack.err.network': 'Server tidak dapat dihubungi. Coba lagi.',
      'ack.err.http': 'Gagal (HTTP {status}). Coba lagi.',
      'ack.cleared': 'Peringatan ini sudah berakhir.',

      'level.normal': 'Normal',
      'level.waspada': 'Waspada',
      'level.siaga': 'Siaga',
      'level.awas': 'Awas',
      'level.offline': 'OFFLINE',
      'level.unknown': '—',

      'cat.emergency': 'Darurat',
      'cat.fire': 'Kebakaran',
      'cat.medical': 'Medis',
      'cat.police': 'Kepolisian',
      'cat.disaster': 'Bencana',
      'cat.complaint': 'Pengaduan',
      'cat.info': 'Informasi',
      'cat.other': 'Lainnya',

      'mayor.headline': 'Angka utama',
      'mayor.reports': 'Laporan warga',
      'mayor.calls': 'Pusat panggilan',
      'mayor.sensors': 'Sensor',
      'mayor.received_today': 'Masuk hari ini',
      'mayor.resolved_today': 'Selesai hari ini',
      'mayor.open': 'Terbuka',
      'mayor.overdue': 'Lewat SLA (> 3 hari)',
      'mayor.sla_met_30d': 'Tepat SLA (30 hari)',
      'mayor.calls_today': 'Panggilan hari ini',
      'mayor.service_level': 'Tingkat layanan (1 jam)',
      'mayor.siaga_awas': 'Sensor Siaga / Awas',
      'mayor.top_agencies': '5 OPD terbanyak lewat SLA',
      'mayor.alerts': 'Peringatan aktif',

      'mayor.delta_legend': '▲ naik · ▼ turun, dibanding kemarin pada jam yang sama. Hijau = lebih baik, merah = lebih buruk.',
      'mayor.sla_trend': 'Tepat SLA per hari · 30 hari',
      'mayor.sla_30d': 'Nilai 30 hari',
      'mayor.sla_daily': 'Per hari',
      'chart.sla.aria': 'Persentase laporan selesai tepat SLA per hari selama 30 hari, dari {from} sampai {to}: terendah {min}, tertinggi {max}; nilai 30 hari {value}.',
      'chart.sla.point': '{day}: {pct} ({met} dari {resolved})',
      'chart.sla.none': '{day}: tidak ada laporan selesai',

      'delta.vs': 'vs kemarin',
      'delta.pp': 'poin',
      'delta.pp_long': 'poin persentase',
      'delta.up': 'naik',
      'delta.down': 'turun',
      'delta.better': 'lebih baik',
      'delta.worse': 'lebih buruk',
      'delta.sr': '{dir} {diff} dibanding kemarin pada jam yang sama (kemarin {base})',
      'delta.sr_same': 'sama dengan kemarin pada jam yang sama ({base})',
      'delta.sr_unknown': 'tidak ada data pembanding kemarin',
      'delta.title': 'Kemarin pada jam yang sama: {base} (sumber: {source}, {at})',
      'delta.source.series': 'deret waktu',
      'delta.source.history': 'rekaman KPI',

      'login.doctitle': 'Masuk — Ruang Kendali',
      'login.heading': 'Ruang Kendali',
      'login.title': 'Masuk',
      'login.title_other': 'Masuk dengan akun lain',
      'login.intro': 'Masuk dengan akun Anda untuk membuka layar ruang kendali atau ringkasan wali kota.',
      'login.username': 'Nama pengguna',
      'login.password': 'Kata sandi',
      'login.submit': 'Masuk',
      'login.sending': 'Memeriksa…',
      'login.ok': 'Berhasil masuk. Membuka halaman…',
      'login.err.empty': 'Isi nama pengguna dan kata sandi.',
      'login.err.failed': 'Nama pengguna atau kata sandi salah.',
      'login.err.wait': 'Terlalu banyak percobaan. Tunggu {n} detik, lalu coba lagi.',
      'login.err.again': 'Silakan coba lagi.',
      'login.err.network': 'Server tidak dapat dihubungi. Coba lagi.',
      'login.err.http': 'Gagal masuk (HTTP {status}). Coba lagi.',
      'login.denied': 'Akun yang sedang dipakai tidak boleh membuka halaman itu.',
      'login.denied_as': 'Anda masuk sebagai {who}: akun ini tidak boleh membuka halaman itu.',
      'login.denied_other': 'Masuk dengan akun lain di bawah ini, atau buka halaman yang boleh dibuka akun ini:',
      'login.denied_none': 'Masuk dengan akun lain di bawah ini.',
      'login.go_wall': 'Layar ruang kendali',
      'login.go_mayor': 'Ringkasan wali kota',
      'login.go_province': 'Ringkasan provinsi',
      'mayor.to_province': '← Provinsi',
      'login.token': 'Token layar tidak valid atau sudah dicabut. Minta token baru kepada tim operasional, atau masuk dengan akun Anda.',
      'login.expired': 'Sesi Anda sudah berakhir atau dicabut. Silakan masuk lagi.',
      'login.hint': 'Layar dinding tanpa petugas tidak perlu masuk: layar itu dibuka sekali dengan token layarnya.',

      'who.label': 'Dilihat oleh',
      'who.anonymous': 'anonim',
      'who.screen': 'layar',
      'who.logout': 'Keluar',
      'who.logging_out': 'Keluar…',
      'role.wall': 'dinding',
      'role.operator': 'operator',
      'role.mayor': 'wali kota',
      'role.admin': 'admin',
      'ack.as': 'Atas nama',
      'role.province': 'provinsi',

      'province.doctitle': 'Ringkasan {head} — {name}',
      'province.doctitle.bare': 'Ringkasan Provinsi',
      'province.heading': '{name} — Ringkasan {head}',
      'province.heading.bare': 'Ringkasan Provinsi',
      'province.members': 'Kabupaten / kota',
      'province.members_hint': 'Terburuk di atas: Awas, Siaga, peringatan aktif, lalu laporan lewat SLA. Sentuh satu daerah untuk membuka ringkasannya.',
      'province.col.member': 'Daerah',
      'province.col.calls_today': 'Panggilan hari ini',
      'province.col.open': 'Laporan terbuka',
      'province.col.overdue': 'Lewat SLA',
      'province.col.sla': 'Tepat SLA 30\u00a0hr',
      'province.col.siaga': 'Sensor Siaga',
      'province.col.awas': 'Sensor Awas',
      'province.col.alerts': 'Peringatan aktif',
      'province.no_members': 'Provinsi ini belum mempunyai anggota',
      'province.alerts': 'Peringatan aktif di semua daerah',
      'province.open_member': 'Buka ringkasan {name}',
    },

    en: {
      'wall.doctitle': 'Control Room — {name}',
      'wall.doctitle.bare': 'Control Room',
      'wall.heading': '{name} — Control Room',
      'wall.heading.bare': 'Control Room',
      'mayor.doctitle': "{head}'s summary — {name}",
      'mayor.doctitle.bare': "Head of region's summary",
      'mayor.heading': "{name} — {head}'s summary",
      'mayor.heading.bare': "Head of region's summary",
      // The heads' titles; any other is shown as the server names it.
      'head.Wali Kota': 'Mayor',
      'head.Bupati': 'Regent',
      'head.Gubernur': 'Governor',
      'lang.switch': 'Bahasa Indonesia',
      'lang.switch.label': 'Switch language to Bahasa Indonesia',

      'hdr.updated': 'Last update',
      'hdr.never': 'none yet',

      'stale.title': 'STALE — connection lost',
      'stale.last': 'Last update: {time}',
      'stale.never': 'No data from the server yet',
      'stale.retry': 'Reconnecting automatically…',
      'stale.title.db': 'STALE — the database cannot be reached',
      'stale.db': 'The server cannot store new data; the numbers shown are the last known. Reconnecting automatically…',

      'panel.calls': 'Call centre',
      'calls.received_today': 'Received today',
      'calls.waiting': 'Waiting',
      'calls.active': 'Active',
      'calls.asa_1h_s': 'Avg. answer',
      'calls.service_level_1h': 'Service level',
      'calls.abandon_rate_1h': 'Abandoned',
      'calls.by_category_today': 'By category today',
      'calls.none_today': 'No calls yet today',
      'sub.1h': 'last hour',
      'sub.sl': '≤ 20 s, 1 h',
      'unit.s': 's',
      'unit.h': 'h',

      'panel.reports': 'Citizen reports',
      'reports.open': 'Open',
      'reports.overdue': 'Overdue',
      'reports.unassigned': 'Unassigned',
      'reports.received_today': 'Received today',
      'reports.resolved_today': 'Resolved today',
      'reports.sla_met_30d': 'SLA met',
      'reports.resolution_p50_30d_h': 'Median resolution',
      'sub.sla3d': '> 3 days',
      'sub.30d': '30 days',
      'reports.by_agency': 'Agencies by overdue',
      'reports.by_district_open': 'Open by district',
      'col.agency': 'Agency',
      'col.overdue': 'Overdue',
      'col.open': 'Open',
      'col.sla': 'SLA met 30 d',
      'reports.no_agency': 'No tickets with an agency',
      'reports.no_district': 'No open reports',

      'panel.sensors': 'Sensors',
      'sensors.none': 'No sensors registered yet',
      'sensors.offline': 'Offline',
      'sensors.of_total': 'of {n} sensors',

      'panel.alerts': 'Active alerts',
      'alerts.none': 'No active alerts',
      'alerts.more': '+{n} more',
      'alerts.acked': 'Acknowledged: {by}',
      'alerts.kind.level': 'Level',
      'alerts.kind.offline': 'Sensor offline',

      'alerts.acked_at': 'Acknowledged by {by} · {time}',
      'alerts.offline_msg': 'no data (offline)',
      'alerts.ack_hint': 'Tap to acknowledge',
      'awas.banner': 'AWAS',
      'awas.more': '+{n} more',

      'trend.calls': 'Calls received per hour · 24 h',
      'trend.reports': 'Reports received per hour · 24 h',
      'chart.bars.aria': '{title}: total {total}; highest {max} at {time}. The last bar is the current hour.',
      'chart.nodata': 'Chart data not available',
      'chart.now': 'now',

      'ack.title': 'Acknowledge alert',
      'ack.by': 'Operator name',
      'ack.note': 'Note (optional)',
      'ack.submit': 'Acknowledge',
      'ack.cancel': 'Cancel',
      'ack.close': 'Close',
      'ack.sending': 'Sending…',
      'ack.ok': 'Acknowledged by {by} at {time}.',
      'ack.previous': 'Already acknowledged by {by} · {time}; a new acknowledgement replaces it.',
      'ack.err.by': 'Enter the operator name (at most 64 bytes).',
      'ack.err.note': 'The note is too long (at most 200 bytes).',
      'ack.err.network': 'The server cannot be reached. Try again.',
      'ack.err.http': 'Failed (HTTP {status}). Try again.',
      'ack.cleared': 'This alert has ended.',

      // Indonesia's official flood alert levels keep their names in English too.
      'level.normal': 'Normal',
      'level.waspada': 'Waspada',
      'level.siaga': 'Siaga',
      'level.awas': 'Awas',
      'level.offline': 'OFFLINE',
      'level.unknown': '—',

      'cat.emergency': 'Emergency',
      'cat.fire': 'Fire',
      'cat.medical': 'Medical',
      'cat.police': 'Police',
      'cat.disaster': 'Disaster',
      'cat.complaint': 'Complaint',
      'cat.info': 'Information',
      'cat.other': 'Other',

      'mayor.headline': 'Headline numbers',
      'mayor.reports': 'Citizen reports',
      'mayor.calls': 'Call centre',
      'mayor.sensors': 'Sensors',
      'mayor.received_today': 'Received today',
      'mayor.resolved_today': 'Resolved today',
      'mayor.open': 'Open',
      'mayor.overdue': 'Overdue (> 3 days)',
      'mayor.sla_met_30d': 'SLA met (30 days)',
      'mayor.calls_today': 'Calls today',
      'mayor.service_level': 'Service level (1 h)',
      'mayor.siaga_awas': 'Sensors at Siaga / Awas',
      'mayor.top_agencies': 'Top 5 agencies by overdue',
      'mayor.alerts': 'Active alerts',

      'mayor.delta_legend': '▲ up · ▼ down, against yesterday at the same time. Green = better, red = worse.',
      'mayor.sla_trend': 'SLA met per day · 30 days',
      'mayor.sla_30d': '30-day value',
      'mayor.sla_daily': 'Per day',
      'chart.sla.aria': 'Share of reports resolved within the SLA per day over 30 days, from {from} to {to}: lowest {min}, highest {max}; 30-day value {value}.',
      'chart.sla.point': '{day}: {pct} ({met} of {resolved})',
      'chart.sla.none': '{day}: no reports resolved',

      'delta.vs': 'vs yesterday',
      'delta.pp': 'pp',
      'delta.pp_long': 'percentage points',
      'delta.up': 'up',
      'delta.down': 'down',
      'delta.better': 'better',
      'delta.worse': 'worse',
      'delta.sr': '{dir} {diff} against yesterday at the same time (yesterday {base})',
      'delta.sr_same': 'the same as yesterday at the same time ({base})',
      'delta.sr_unknown': 'no comparison with yesterday available',
      'delta.title': 'Yesterday at the same time: {base} (source: {source}, {at})',
      'delta.source.series': 'time series',
      'delta.source.history': 'KPI record',

      'login.doctitle': 'Log in — Control Room',
      'login.heading': 'Control Room',
      'login.title': 'Log in',
      'login.title_other': 'Log in with another account',
      'login.intro': "Log in with your account to open the control room screen or the mayor's summary.",
      'login.username': 'User name',
      'login.password': 'Password',
      'login.submit': 'Log in',
      'login.sending': 'Checking…',
      'login.ok': 'Logged in. Opening the page…',
      'login.err.empty': 'Enter your user name and password.',
      'login.err.failed': 'Wrong user name or password.',
      'login.err.wait': 'Too many attempts. Wait {n} seconds, then try again.',
      'login.err.again': 'You may try again.',
      'login.err.network': 'The server cannot be reached. Try again.',
      'login.err.http': 'Login failed (HTTP {status}). Try again.',
      'login.denied': 'The account in use may not open that page.',
      'login.denied_as': 'You are logged in as {who}: this account may not open that page.',
      'login.denied_other': 'Log in with another account below, or open a page this account may see:',
      'login.denied_none': 'Log in with another account below.',
      'login.go_wall': 'Control room screen',
      'login.go_mayor': "Mayor's summary",
      'login.go_province': 'Province summary',
      'mayor.to_province': '← Province',
      'login.token': 'The screen token is invalid or has been revoked. Ask the operations team for a new one, or log in with your account.',
      'login.expired': 'Your session has ended or was revoked. Please log in again.',
      'login.hint': 'An unattended wall screen does not log in: it is opened once with its screen token.',

      'who.label': 'Watched by',
      'who.anonymous': 'anonymous',
      'who.screen': 'screen',
      'who.logout': 'Log out',
      'who.logging_out': 'Logging out…',
      'role.wall': 'wall',
      'role.operator': 'operator',
      'role.mayor': 'mayor',
      'role.admin': 'admin',
      'ack.as': 'As',
      'role.province': 'province',

      'province.doctitle': "{head}'s summary — {name}",
      'province.doctitle.bare': 'Provincial summary',
      'province.heading': "{name} — {head}'s summary",
      'province.heading.bare': 'Provincial summary',
      'province.members': 'Regencies and cities',
      'province.members_hint': 'Worst first: Awas, Siaga, active alerts, then overdue reports. Tap a region to open its summary.',
      'province.col.member': 'Region',
      'province.col.calls_today': 'Calls today',
      'province.col.open': 'Open reports',
      'province.col.overdue': 'Overdue',
      'province.col.sla': 'SLA met 30\u00a0d',
      'province.col.siaga': 'Gauges at Siaga',
      'province.col.awas': 'Gauges at Awas',
      'province.col.alerts': 'Active alerts',
      'province.no_members': 'This province has no members yet',
      'province.alerts': 'Active alerts in every region',
      'province.open_member': 'Open the summary of {name}',
    },
  };

  const params = new URLSearchParams(window.location.search);
  const lang = params.get('lang') === 'en' ? 'en' : 'id';
  const locale = lang === 'en' ? 'en-US' : 'id-ID';
  const dict = DICT[lang];

  /** Label for key; "{name}" placeholders are filled from vars. */
  function t(key, vars) {
    let s = Object.prototype.hasOwnProperty.call(dict, key) ? dict[key] : key;
    if (vars) {
      s = s.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
    }
    return s;
  }

  /**
   * A label naming the tenant ({name}, {head}): its ".bare" form until the
   * tenant is known.
   */
  function tenantLabel(key) {
    if (!tenant && Object.prototype.hasOwnProperty.call(dict, key + '.bare')) return dict[key + '.bare'];
    if (!tenant) return t(key);
    const head = Object.prototype.hasOwnProperty.call(dict, 'head.' + tenant.head) ? dict['head.' + tenant.head]
      : tenant.head;
    return t(key, { name: tenant.name, head });
  }

  /** Fill every [data-i18n] element under root; set <html lang> and the title. */
  function apply(root) {
    document.documentElement.lang = lang;
    (root || document).querySelectorAll('[data-i18n]').forEach((el) => {
      el.textContent = tenantLabel(el.dataset.i18n);
    });
    (root || document).querySelectorAll('[data-i18n-aria]').forEach((el) => {
      el.setAttribute('aria-label', t(el.dataset.i18nAria));
    });
    const title = document.querySelector('title[data-i18n]');
    if (title) document.title = tenantLabel(title.dataset.i18n);
  }

  // ---- numbers -------------------------------------------------------------

  const nfInt = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
  const nfPct = new Intl.NumberFormat(locale, {
    style: 'percent', minimumFractionDigits: 1, maximumFractionDigits: 1,
  });
  const nfPct0 = new Intl.NumberFormat(locale, { style: 'percent', maximumFractionDigits: 0 });
  const nfDec = new Map();

  function isNum(v) {
    return typeof v === 'number' && Number.isFinite(v);
  }

  /** A count: 1.234 (id) / 1,234 (en). */
  function int(v) {
    return nfInt.format(v);
  }

  /** A ratio 0..1 as a percentage with one decimal: 87,5% (id) / 87.5% (en). */
  function pct(v) {
    return nfPct.format(v);
  }

  /** A ratio 0..1 as a whole percentage, for chart axes: 80% (id, en). */
  function pct0(v) {
    return nfPct0.format(v);
  }

  const nfPp = new Intl.NumberFormat(locale, { minimumFractionDigits: 1, maximumFractionDigits: 1 });

  /** A difference of two ratios in percentage points, one decimal, unsigned: 2,3 / 5,0 (id). */
  function pp(v) {
    return nfPp.format(Math.abs(v) * 100);
  }

  /** A decimal number with at most `digits` fraction digits. */
  function dec(v, digits) {
    let nf = nfDec.get(digits);
    if (!nf) {
      nf = new Intl.NumberFormat(locale, { minimumFractionDigits: 0, maximumFractionDigits: digits });
      nfDec.set(digits, nf);
    }
    return nf.format(v);
  }

  // ---- times (in the tenant's zone) ----------------------------------------

  let dfClock, dfDay, dfShortDate, dfLongDate;
  function buildTimeFormats() {
    dfClock = new Intl.DateTimeFormat('en-GB', {
      timeZone: TZ, hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
    });
    dfDay = new Intl.DateTimeFormat('en-CA', {
      timeZone: TZ, year: 'numeric', month: '2-digit', day: '2-digit',
    });
    dfShortDate = new Intl.DateTimeFormat(locale, {
      timeZone: TZ, day: 'numeric', month: 'short',
    });
    dfLongDate = new Intl.DateTimeFormat(locale, {
      timeZone: TZ, weekday: 'long', day: 'numeric', month: 'long', year: 'numeric',
    });
  }
  buildTimeFormats();

  /**
   * The tenant as GET /api/v1/session names it ({name, head, time_zone, zone,
   * utc_offset}): the titles and every time follow it.  True when it changed
   * anything (the page then renders its times again).
   */
  function setTenant(tn) {
    if (!tn || typeof tn.name !== 'string' || typeof tn.time_zone !== 'string') return false;
    const m = /^([+-])(\d\d):(\d\d)$/.exec(tn.utc_offset || '');
    if (!m) return false;
    const same = tenant && tenant.name === tn.name && tenant.head === tn.head && TZ === tn.time_zone &&
      ZONE === tn.zone;
    if (same) return false;
    try {
      new Intl.DateTimeFormat('en-GB', { timeZone: tn.time_zone });
    } catch (e) {
      return false; // a zone this browser does not know: keep the last one
    }
    tenant = { name: tn.name, head: tn.head };
    TZ = tn.time_zone;
    ZONE = tn.zone || 'UTC' + tn.utc_offset;
    OFFSET_MS = (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 3600 + Number(m[3]) * 60) * 1000;
    buildTimeFormats();
    apply(document);
    return true;
  }

  function toDate(x) {
    if (x instanceof Date) return x;
    if (x == null) return null;
    const d = new Date(x);
    return Number.isNaN(d.getTime()) ? null : d;
  }

  /** [hh, mm, ss] in the zone; built from parts so the separator is always ':'. */
  function hms(d) {
    const p = {};
    for (const part of dfClock.formatToParts(d)) p[part.type] = part.value;
    return [p.hour === '24' ? '00' : p.hour, p.minute, p.second];
  }

  /** "HH:MM:SS WIB" (or WITA, WIT: the tenant's zone) */
  function clock(x) {
    const d = toDate(x);
    return d ? hms(d).join(':') + ' ' + ZONE : '—';
  }

  /** "HH:MM" in the zone, prefixed with a short date when not today. */
  function hm(x, now) {
    const d = toDate(x);
    if (!d) return '—';
    const s = hms(d).slice(0, 2).join(':');
    return sameDay(d, now || new Date()) ? s : dfShortDate.format(d) + ' ' + s;
  }

  /** "HH:MM:SS WIB", prefixed with a short date when not today. */
  function when(x, now) {
    const d = toDate(x);
    if (!d) return '—';
    const s = clock(d);
    return sameDay(d, now || new Date()) ? s : dfShortDate.format(d) + ' ' + s;
  }

  /** "HH:MM" in the zone, never with a date (chart axes). */
  function hhmm(x) {
    const d = toDate(x);
    return d ? hms(d).slice(0, 2).join(':') : '—';
  }

  /** Short date in the zone: "23 Nov" (id) / "Nov 23" (en). */
  function day(x) {
    const d = toDate(x);
    return d ? dfShortDate.format(d) : '—';
  }

  /** Long date in the zone: "Senin, 23 November 2026". */
  function date(x) {
    const d = toDate(x);
    return d ? dfLongDate.format(d) : '—';
  }

  function sameDay(a, b) {
    return dfDay.format(a) === dfDay.format(b);
  }

  // A tenant's zone keeps one offset all year (every zone of Indonesia does; the
  // server refuses others), so the start of its day is plain arithmetic.
  const DAY_MS = 24 * 3600 * 1000;

  /** Epoch ms of 00:00 of the tenant's day that holds ms. */
  function startOfDay(ms) {
    return Math.floor((ms + OFFSET_MS) / DAY_MS) * DAY_MS - OFFSET_MS;
  }

  // ---- domain labels -------------------------------------------------------

  /** Call category label; unknown categories are shown as sent. */
  function category(key) {
    const k = 'cat.' + key;
    return Object.prototype.hasOwnProperty.call(dict, k) ? dict[k] : String(key);
  }

  /** Level label: normal / waspada / siaga / awas / offline. */
  function level(key) {
    const k = 'level.' + key;
    return Object.prototype.hasOwnProperty.call(dict, k) ? dict[k] : dict['level.unknown'];
  }

  /** Role label: wall / operator / mayor / admin; an unknown role is shown as sent. */
  function role(key) {
    const k = 'role.' + key;
    return Object.prototype.hasOwnProperty.call(dict, k) ? dict[k] : String(key);
  }

  window.I18n = {
    lang,
    locale,
    t,
    apply,
    isNum,
    fmt: { int, pct, pct0, pp, dec, clock, hm, hhmm, when, day, date },
    tz: { startOfDay, DAY_MS },
    setTenant,
    category,
    level,
    role,
  };
})();
