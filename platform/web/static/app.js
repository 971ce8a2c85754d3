// TrainFlow portal: the one script (beside the service worker, /portal/sw.js). On a narrow
// screen the navigation folds behind a "Menu" button; without the script (or on a wide
// screen) the navigation is simply shown.
document.documentElement.classList.add('js');
document.addEventListener('DOMContentLoaded', function () {
  var button = document.querySelector('.menu-toggle');
  var nav = document.getElementById('main-nav');
  if (!button || !nav) return;
  button.addEventListener('click', function () {
    var open = button.getAttribute('aria-expanded') !== 'true';
    button.setAttribute('aria-expanded', String(open));
    nav.classList.toggle('open', open);
  });
});

// Push notifications: the notification centre's button registers the service worker,
// subscribes with the server's VAPID key and hands the subscription to the server.
document.addEventListener('DOMContentLoaded', function () {
  var button = document.getElementById('push-on');
  var status = document.getElementById('push-status');
  if (!button || !status) return;
  if (!('serviceWorker' in navigator) || !('PushManager' in window) || !('Notification' in window)) {
    status.textContent = 'This browser cannot receive push notifications.';
    return;
  }
  button.hidden = false;
  function key(base64url) {
    var text = atob(base64url.replace(/-/g, '+').replace(/_/g, '/'));
    var bytes = new Uint8Array(text.length);
    for (var i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    return bytes;
  }
  button.addEventListener('click', function () {
    status.textContent = 'Turning push on…';
    Notification.requestPermission().then(function (permission) {
      if (permission !== 'granted') throw new Error('Notifications are blocked for this site in the browser’s settings.');
      return navigator.serviceWorker.register('/portal/sw.js', { scope: '/portal/' });
    }).then(function () {
      return navigator.serviceWorker.ready;
    }).then(function (registration) {
      return registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key(button.dataset.key) });
    }).then(function (subscription) {
      var s = subscription.toJSON();
      return fetch('/portal/notifications/push', {
        method: 'POST',
        credentials: 'same-origin',
        body: new URLSearchParams({ csrf: button.dataset.csrf, endpoint: s.endpoint, p256dh: s.keys.p256dh, auth: s.keys.auth, user_agent: navigator.userAgent.slice(0, 300) })
      });
    }).then(function (response) {
      if (!response.ok) throw new Error('The server refused this device’s subscription.');
      window.location.href = '/portal/notifications?notice=push_on';
    }).catch(function (error) {
      status.textContent = error.message || 'Push could not be turned on.';
    });
  });
});
